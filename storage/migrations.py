"""Versioned schema: append-only migrations, applied in order at start-up.

Never edit a migration that has shipped; add a new one. The names double as the schema
version, so a store written by a newer release is recognised and refused cleanly.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("sovereign_watch")


def _run_script(db: Database, script: str) -> None:
    """Execute statements one by one: `executescript` would COMMIT the migration's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement[:60]!r}")


@migrations(name="0001_initial")
def initial(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            name TEXT,
            kind TEXT NOT NULL DEFAULT 'feed',          -- feed | starter | file
            enabled INTEGER NOT NULL DEFAULT 1,
            etag TEXT,
            last_modified TEXT,
            last_status TEXT,                            -- ok | not_modified | empty | error ...
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            next_poll_at REAL NOT NULL DEFAULT 0,
            last_polled_at TEXT,
            last_success_at TEXT,
            added_at TEXT NOT NULL
        );

        CREATE TABLE stories (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            url TEXT NOT NULL,
            countries TEXT NOT NULL DEFAULT '[]',
            topics TEXT NOT NULL DEFAULT '[]',
            entities TEXT NOT NULL DEFAULT '[]',
            signature TEXT NOT NULL DEFAULT '',
            relevant INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            event_at TEXT,
            article_count INTEGER NOT NULL DEFAULT 1,
            sources TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX stories_last_seen ON stories(last_seen);
        CREATE INDEX stories_event_at ON stories(event_at);

        CREATE TABLE articles (
            seq INTEGER PRIMARY KEY,                     -- stable rowid for the FTS index
            id TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL UNIQUE,
            guid TEXT,
            source_id INTEGER REFERENCES sources(id) ON DELETE SET NULL,
            source TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'feed',
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            published TEXT,
            fetched_at TEXT NOT NULL,
            lang TEXT NOT NULL DEFAULT 'en',
            relevant INTEGER NOT NULL DEFAULT 0,
            score REAL NOT NULL DEFAULT 0,
            countries TEXT NOT NULL DEFAULT '[]',
            topics TEXT NOT NULL DEFAULT '[]',
            entities TEXT NOT NULL DEFAULT '[]',
            story_id TEXT NOT NULL REFERENCES stories(id),
            terms TEXT NOT NULL DEFAULT ''               -- extra search terms (Korean stems...)
        );
        CREATE UNIQUE INDEX articles_guid ON articles(source_id, guid) WHERE guid IS NOT NULL;
        CREATE INDEX articles_story ON articles(story_id);
        CREATE INDEX articles_published ON articles(published);
        CREATE INDEX articles_fetched ON articles(fetched_at);

        CREATE VIRTUAL TABLE articles_fts USING fts5(
            title, summary, terms,
            content='articles', content_rowid='seq',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
            INSERT INTO articles_fts(rowid, title, summary, terms)
            VALUES (new.seq, new.title, new.summary, new.terms);
        END;
        CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, title, summary, terms)
            VALUES ('delete', old.seq, old.title, old.summary, old.terms);
        END;
        CREATE TRIGGER articles_au AFTER UPDATE OF title, summary, terms ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, title, summary, terms)
            VALUES ('delete', old.seq, old.title, old.summary, old.terms);
            INSERT INTO articles_fts(rowid, title, summary, terms)
            VALUES (new.seq, new.title, new.summary, new.terms);
        END;

        CREATE TABLE targets (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,                    -- platform:chat:thread
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            thread_id TEXT NOT NULL DEFAULT '',
            title TEXT,
            tz TEXT NOT NULL DEFAULT 'UTC',
            paused INTEGER NOT NULL DEFAULT 0,
            paused_reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY,
            target_id INTEGER NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
            countries TEXT NOT NULL DEFAULT '[]',
            topics TEXT NOT NULL DEFAULT '[]',
            keywords TEXT NOT NULL DEFAULT '[]',
            excluded TEXT NOT NULL DEFAULT '[]',
            mode TEXT NOT NULL DEFAULT 'instant',
            digest_time TEXT NOT NULL DEFAULT '09:00',
            created_at TEXT NOT NULL,
            last_digest_at TEXT
        );
        CREATE INDEX subscriptions_target ON subscriptions(target_id);

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,             -- story:target (or digest:target:day)
            kind TEXT NOT NULL DEFAULT 'alert',          -- alert | digest | catchup | update
            story_id TEXT REFERENCES stories(id),
            target_id INTEGER NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
            subscription_id INTEGER,
            state TEXT NOT NULL DEFAULT 'pending',       -- pending|in_flight|sent|failed|uncertain
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            nonce TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            platform_message_id TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

        CREATE TABLE conversations (
            key TEXT PRIMARY KEY,                        -- target key + user id
            history TEXT NOT NULL DEFAULT '[]',
            updated_at REAL NOT NULL
        );

        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    )


@migrations(name="0002_delivery")
def delivery(db: Database) -> None:
    """Delivery bookkeeping: uncertain sends, edits of sent alerts, chat kinds, a change counter."""
    _run_script(
        db,
        """
        ALTER TABLE outbox ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE outbox ADD COLUMN in_flight_at REAL;
        ALTER TABLE outbox ADD COLUMN sent_ts REAL;
        ALTER TABLE outbox ADD COLUMN shown_count INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE outbox ADD COLUMN edit_after REAL;
        CREATE INDEX outbox_story ON outbox(story_id);
        CREATE INDEX outbox_target_state ON outbox(target_id, state);

        ALTER TABLE targets ADD COLUMN chat_type TEXT;
        ALTER TABLE targets ADD COLUMN paused_at TEXT;

        INSERT OR IGNORE INTO meta(key, value) VALUES ('subs_version', '0');
        CREATE TRIGGER subs_version_ai AFTER INSERT ON subscriptions BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'subs_version';
        END;
        CREATE TRIGGER subs_version_ad AFTER DELETE ON subscriptions BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'subs_version';
        END;
        CREATE TRIGGER subs_version_au
        AFTER UPDATE OF target_id, countries, topics, keywords, excluded, mode ON subscriptions
        BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'subs_version';
        END;
        CREATE TRIGGER subs_version_tu
        AFTER UPDATE OF paused, key, platform, chat_id, thread_id ON targets BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'subs_version';
        END;
        """,
    )


@migrations(name="0003_schedules")
def schedules(db: Database) -> None:
    """Weekly digests (a weekday) and quiet hours for instant alerts, per subscription."""
    _run_script(
        db,
        """
        ALTER TABLE subscriptions ADD COLUMN digest_day INTEGER;
        ALTER TABLE subscriptions ADD COLUMN quiet_start TEXT;
        ALTER TABLE subscriptions ADD COLUMN quiet_end TEXT;
        CREATE INDEX outbox_message ON outbox(target_id, platform_message_id);
        """,
    )


KNOWN = [m.name for m in migrations._migrations]
