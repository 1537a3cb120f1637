"""SQLite implementations of the core's ports. The only place that writes SQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from bot.core.models import (
    Article,
    Mode,
    Story,
    Subscription,
    SubscriptionSpec,
    Target,
)
from bot.core.ports import (
    DeliveryRow,
    DigestSub,
    EditRow,
    NewArticle,
    OutboxRow,
    RecoveryCounts,
    SearchHit,
    SourceRow,
    StoryCandidate,
    StoryText,
)
from storage.rows import dumps, iso, loads_tuple, parse_iso, to_article, to_story, to_target


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rows(
    db: Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()
) -> list[dict[str, Any]]:
    cur = db.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def _to_source(row: dict[str, Any]) -> SourceRow:
    return SourceRow(
        id=row["id"],
        url=row["url"],
        name=row["name"],
        kind=row["kind"],
        enabled=bool(row["enabled"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        error_count=row["error_count"],
        consecutive_failures=row["consecutive_failures"],
        next_poll_at=row["next_poll_at"],
        last_polled_at=row["last_polled_at"],
        last_success_at=row["last_success_at"],
    )


def _to_outbox_row(r: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        dedupe_key=r["dedupe_key"],
        kind=r["kind"],
        story_id=r["story_id"],
        target_id=r["target_id"],
        subscription_id=r["subscription_id"],
        nonce=r["nonce"],
        payload=json.loads(r["payload"] or "{}"),
        next_attempt_at=r["next_attempt_at"],
        id=r["id"],
        state=r["state"],
    )


def insert_outbox_row(db: Database, row: OutboxRow) -> int:
    """Queue one delivery unless its dedupe key is already there; 1 if added, else 0."""
    cur = db.execute(
        "INSERT OR IGNORE INTO outbox(dedupe_key, kind, story_id, target_id, "
        "subscription_id, state, nonce, payload, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        [
            row.dedupe_key,
            row.kind,
            row.story_id,
            row.target_id,
            row.subscription_id,
            row.nonce,
            json.dumps(row.payload, ensure_ascii=False),
            row.next_attempt_at,
            _now(),
        ],
    )
    return int(cur.rowcount or 0)


class SqliteSourceRepo:
    """Feeds and other origins of articles (the starter knowledge is one)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure(self, url: str, *, name: str | None = None, kind: str = "feed") -> int:
        row = _rows(self.db, "SELECT id FROM sources WHERE url = ?", [url])
        if row:
            return int(row[0]["id"])
        cur = self.db.execute(
            "INSERT INTO sources(url, name, kind, added_at) VALUES (?, ?, ?, ?)",
            [url, name, kind, _now()],
        )
        self.db.conn.commit()
        return int(cur.lastrowid or 0)

    def add_feed(self, url: str) -> bool:
        """Add or re-enable a feed; True when it was not already an enabled feed."""
        existing = self.get(url)
        if existing is None:
            self.ensure(url, kind="feed")
            return True
        self.db.execute(
            "UPDATE sources SET enabled = 1, consecutive_failures = 0, next_poll_at = 0, "
            "last_status = CASE WHEN last_status = 'disabled' THEN NULL ELSE last_status END "
            "WHERE id = ?",
            [existing.id],
        )
        self.db.conn.commit()
        return not existing.enabled

    def remove(self, url: str) -> bool:
        cur = self.db.execute("DELETE FROM sources WHERE url = ? AND kind = 'feed'", [url])
        self.db.conn.commit()
        return cur.rowcount > 0

    def get(self, url: str) -> SourceRow | None:
        rows = _rows(self.db, "SELECT * FROM sources WHERE url = ?", [url])
        return _to_source(rows[0]) if rows else None

    def all(self, kind: str | None = "feed") -> list[SourceRow]:
        if kind is None:
            return [_to_source(r) for r in _rows(self.db, "SELECT * FROM sources ORDER BY id")]
        return [
            _to_source(r)
            for r in _rows(self.db, "SELECT * FROM sources WHERE kind = ? ORDER BY id", [kind])
        ]

    def due(self, now: float) -> list[SourceRow]:
        return [
            _to_source(r)
            for r in _rows(
                self.db,
                "SELECT * FROM sources WHERE kind = 'feed' AND enabled = 1 AND next_poll_at <= ? "
                "ORDER BY next_poll_at",
                [now],
            )
        ]

    def record_success(
        self,
        source_id: int,
        *,
        status: str,
        etag: str | None,
        last_modified: str | None,
        next_poll_at: float,
        name: str | None = None,
        warning: str | None = None,
    ) -> None:
        self.db.execute(
            "UPDATE sources SET last_status = ?, etag = COALESCE(?, etag), "
            "last_modified = COALESCE(?, last_modified), last_error = ?, "
            "consecutive_failures = 0, next_poll_at = ?, last_polled_at = ?, "
            "last_success_at = ?, name = COALESCE(name, ?) WHERE id = ?",
            [status, etag, last_modified, warning, next_poll_at, _now(), _now(), name, source_id],
        )
        self.db.conn.commit()

    def record_failure(
        self, source_id: int, *, status: str, error: str, next_poll_at: float, disable: bool
    ) -> None:
        self.db.execute(
            "UPDATE sources SET last_status = ?, last_error = ?, error_count = error_count + 1, "
            "consecutive_failures = consecutive_failures + 1, next_poll_at = ?, "
            "last_polled_at = ?, enabled = CASE WHEN ? THEN 0 ELSE enabled END WHERE id = ?",
            [status, error, next_poll_at, _now(), 1 if disable else 0, source_id],
        )
        self.db.conn.commit()


class SqliteArticleRepo:
    """Articles, stories and the full-text index, written together in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- dedupe ---------------------------------------------------------------------------
    def known_urls(self, urls: Iterable[str]) -> set[str]:
        found: set[str] = set()
        batch = list(dict.fromkeys(urls))
        for i in range(0, len(batch), 500):
            part = batch[i : i + 500]
            marks = ",".join("?" * len(part))
            found.update(
                r[0]
                for r in self.db.execute(f"SELECT url FROM articles WHERE url IN ({marks})", part)
            )
        return found

    def known_guids(self, source_id: int | None, guids: Iterable[str]) -> set[str]:
        if source_id is None:
            return set()
        found: set[str] = set()
        batch = list(dict.fromkeys(guids))
        for i in range(0, len(batch), 500):
            part = batch[i : i + 500]
            marks = ",".join("?" * len(part))
            found.update(
                r[0]
                for r in self.db.execute(
                    f"SELECT guid FROM articles WHERE source_id = ? AND guid IN ({marks})",
                    [source_id, *part],
                )
            )
        return found

    def count(self, *, kind: str | None = None) -> int:
        if kind:
            return int(
                self.db.execute("SELECT count(*) FROM articles WHERE kind = ?", [kind]).fetchone()[
                    0
                ]
            )
        return int(self.db.execute("SELECT count(*) FROM articles").fetchone()[0])

    # --- writes -----------------------------------------------------------------------------
    def save(
        self,
        articles: Sequence[NewArticle],
        stories: Sequence[StoryCandidate],
        outbox: Sequence[OutboxRow] = (),
    ) -> None:
        """Insert articles, upsert their stories and queue deliveries: all or nothing."""
        with self.db.atomic():
            for story in stories:
                self.db.execute(
                    "INSERT INTO stories(id, title, url, countries, topics, entities, signature, "
                    "relevant, first_seen, last_seen, event_at, article_count, sources) "
                    "VALUES (:id, :title, :url, :countries, :topics, :entities, :signature, "
                    ":relevant, :first_seen, :last_seen, :event_at, :article_count, :sources) "
                    "ON CONFLICT(id) DO UPDATE SET countries = excluded.countries, "
                    "topics = excluded.topics, entities = excluded.entities, "
                    "signature = excluded.signature, relevant = excluded.relevant, "
                    "last_seen = excluded.last_seen, article_count = excluded.article_count, "
                    "sources = excluded.sources",
                    {
                        "id": story.id,
                        "title": story.title,
                        "url": story.url,
                        "countries": dumps(story.countries),
                        "topics": dumps(story.topics),
                        "entities": dumps(story.entities),
                        "signature": story.signature,
                        "relevant": int(story.relevant),
                        "first_seen": iso(story.first_seen),
                        "last_seen": iso(story.last_seen),
                        "event_at": iso(story.event_at),
                        "article_count": story.article_count,
                        "sources": dumps(story.sources),
                    },
                )
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO articles(id, url, guid, source_id, source, kind, title, "
                "summary, published, fetched_at, lang, relevant, score, countries, topics, "
                "entities, story_id, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)",
                [
                    (
                        a.id,
                        a.url,
                        a.guid,
                        a.source_id,
                        a.source,
                        a.kind,
                        a.title,
                        a.summary,
                        iso(a.published),
                        iso(a.fetched_at),
                        a.lang,
                        int(a.relevant),
                        a.score,
                        dumps(a.countries),
                        dumps(a.topics),
                        dumps(a.entities),
                        a.story_id,
                        a.terms,
                    )
                    for a in articles
                ],
            )
            for row in outbox:
                insert_outbox_row(self.db, row)

    # --- reads ----------------------------------------------------------------------------
    def recent_stories(self, since: datetime, limit: int = 20_000) -> list[StoryCandidate]:
        rows = _rows(
            self.db,
            "SELECT * FROM stories WHERE last_seen >= ? ORDER BY last_seen DESC LIMIT ?",
            [iso(since), limit],
        )
        return [
            StoryCandidate(
                id=r["id"],
                title=r["title"],
                url=r["url"],
                countries=loads_tuple(r["countries"]),
                topics=loads_tuple(r["topics"]),
                entities=loads_tuple(r["entities"]),
                signature=r["signature"],
                relevant=bool(r["relevant"]),
                first_seen=parse_iso(r["first_seen"]) or datetime.now(UTC),
                last_seen=parse_iso(r["last_seen"]) or datetime.now(UTC),
                event_at=parse_iso(r["event_at"]),
                article_count=r["article_count"],
                sources=loads_tuple(r["sources"]),
            )
            for r in rows
        ]

    def story(self, story_id: str) -> Story | None:
        rows = _rows(self.db, "SELECT * FROM stories WHERE id = ?", [story_id])
        return to_story(rows[0]) if rows else None

    def articles_of_story(self, story_id: str) -> list[Article]:
        return [
            to_article(r)
            for r in _rows(
                self.db,
                "SELECT * FROM articles WHERE story_id = ? "
                "ORDER BY COALESCE(published, fetched_at)",
                [story_id],
            )
        ]

    def by_url(self, url: str) -> Article | None:
        rows = _rows(self.db, "SELECT * FROM articles WHERE url = ?", [url])
        return to_article(rows[0]) if rows else None

    def by_ids(self, ids: Sequence[str]) -> list[Article]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        found = {
            r["id"]: to_article(r)
            for r in _rows(self.db, f"SELECT * FROM articles WHERE id IN ({marks})", list(ids))
        }
        return [found[i] for i in ids if i in found]

    def search(self, match: str, *, limit: int = 50, min_seq: int = 0) -> list[SearchHit]:
        """BM25-ranked hits for an FTS5 query (title weighs most, then summary, then terms)."""
        if not match:
            return []
        rows = self.db.execute(
            "SELECT rowid, bm25(articles_fts, 4.0, 1.0, 1.0) AS score FROM articles_fts "
            "WHERE articles_fts MATCH ? AND rowid >= ? ORDER BY score LIMIT ?",
            [match, min_seq, limit],
        ).fetchall()
        if not rows:
            return []
        scores = {int(r[0]): float(r[1]) for r in rows}
        marks = ",".join("?" * len(scores))
        arts = _rows(self.db, f"SELECT * FROM articles WHERE seq IN ({marks})", list(scores))
        hits = [SearchHit(article=to_article(a), score=-scores[a["seq"]]) for a in arts]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits

    def seq_since(self, when: datetime) -> int:
        # Walks the fetched_at index to the first row in the window: min(seq) over the
        # window would scan every row after it (400 ms at a million articles).
        row = self.db.execute(
            "SELECT seq FROM articles WHERE fetched_at >= ? ORDER BY fetched_at LIMIT 1",
            [iso(when)],
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def max_seq(self) -> int:
        row = self.db.execute("SELECT max(seq) FROM articles").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def latest(
        self, *, country: str | None = None, topic: str | None = None, limit: int = 5
    ) -> list[Article]:
        """Newest relevant articles, one per story, optionally limited to a country or topic."""
        clauses = ["a.relevant = 1", "a.kind = 'feed'"]
        params: list[Any] = []
        if country:
            clauses.append("EXISTS (SELECT 1 FROM json_each(a.countries) WHERE value = ?)")
            params.append(country)
        if topic:
            clauses.append("EXISTS (SELECT 1 FROM json_each(a.topics) WHERE value = ?)")
            params.append(topic)
        sql = (
            "SELECT a.* FROM articles a WHERE "
            + " AND ".join(clauses)
            + " ORDER BY COALESCE(a.published, a.fetched_at) DESC, a.seq DESC LIMIT ?"
        )
        params.append(limit * 8)
        out: list[Article] = []
        seen: set[str] = set()
        for row in _rows(self.db, sql, params):
            if row["story_id"] in seen:
                continue
            seen.add(row["story_id"])
            out.append(to_article(row))
            if len(out) >= limit:
                break
        return out

    def export(self, since: datetime | None = None, kind: str = "feed") -> Iterator[Article]:
        sql = "SELECT * FROM articles WHERE kind = ?"
        params: list[Any] = [kind]
        if since is not None:
            sql += " AND COALESCE(published, fetched_at) >= ?"
            params.append(iso(since))
        sql += " ORDER BY seq"
        cur = self.db.execute(sql, params)
        cols = [c[0] for c in cur.description]
        for row in cur:
            yield to_article(dict(zip(cols, row, strict=True)))


@dataclass(frozen=True)
class TargetInfo:
    id: int
    target: Target
    paused: bool
    paused_reason: str | None
    tz: str


class SqliteSubscriptionRepo:
    """Targets (chats, channels, topics) and their subscriptions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def target_id(self, target: Target, *, create: bool = True) -> int | None:
        rows = _rows(self.db, "SELECT id FROM targets WHERE key = ?", [target.key])
        if rows:
            return int(rows[0]["id"])
        if not create:
            return None
        cur = self.db.execute(
            "INSERT INTO targets(key, platform, chat_id, thread_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [target.key, target.platform, target.chat_id, target.thread_id, _now(), _now()],
        )
        self.db.conn.commit()
        return int(cur.lastrowid or 0)

    def target_info(self, target: Target) -> TargetInfo | None:
        rows = _rows(self.db, "SELECT * FROM targets WHERE key = ?", [target.key])
        if not rows:
            return None
        r = rows[0]
        return TargetInfo(r["id"], to_target(r), bool(r["paused"]), r["paused_reason"], r["tz"])

    def add(self, target: Target, spec: SubscriptionSpec) -> Subscription:
        target_id = self.target_id(target)
        now = _now()
        cur = self.db.execute(
            "INSERT INTO subscriptions(target_id, countries, topics, keywords, excluded, mode, "
            "digest_time, digest_day, quiet_start, quiet_end, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                target_id,
                dumps(spec.countries),
                dumps(spec.topics),
                dumps(spec.keywords),
                dumps(spec.excluded),
                spec.mode.value,
                spec.digest_time,
                spec.digest_day,
                spec.quiet_start,
                spec.quiet_end,
                now,
            ],
        )
        self.db.conn.commit()
        return Subscription(
            id=int(cur.lastrowid or 0), target=target, spec=spec, created_at=parse_iso(now)
        )

    def count_for(self, target: Target) -> int:
        target_id = self.target_id(target, create=False)
        if target_id is None:
            return 0
        return int(
            self.db.execute(
                "SELECT count(*) FROM subscriptions WHERE target_id = ?", [target_id]
            ).fetchone()[0]
        )

    def for_target(self, target: Target) -> list[Subscription]:
        rows = _rows(
            self.db,
            "SELECT s.*, t.paused, t.paused_reason FROM subscriptions s "
            "JOIN targets t ON t.id = s.target_id WHERE t.key = ? ORDER BY s.id",
            [target.key],
        )
        return [self._to_sub(r, target) for r in rows]

    def all(self) -> list[Subscription]:
        rows = _rows(
            self.db,
            "SELECT s.*, t.paused, t.paused_reason, t.platform, t.chat_id, t.thread_id "
            "FROM subscriptions s JOIN targets t ON t.id = s.target_id ORDER BY s.id",
        )
        return [self._to_sub(r, to_target(r)) for r in rows]

    def active(self) -> list[tuple[int, Subscription]]:
        """(target id, subscription) for every subscription whose target is not paused."""
        rows = _rows(
            self.db,
            "SELECT s.*, t.paused, t.paused_reason, t.platform, t.chat_id, t.thread_id "
            "FROM subscriptions s JOIN targets t ON t.id = s.target_id WHERE t.paused = 0",
        )
        return [(int(r["target_id"]), self._to_sub(r, to_target(r))) for r in rows]

    def remove(self, target: Target, subscription_id: int | None) -> int:
        """Remove one subscription of this target (or all when id is None); count removed."""
        target_id = self.target_id(target, create=False)
        if target_id is None:
            return 0
        if subscription_id is None:
            cur = self.db.execute("DELETE FROM subscriptions WHERE target_id = ?", [target_id])
        else:
            cur = self.db.execute(
                "DELETE FROM subscriptions WHERE target_id = ? AND id = ?",
                [target_id, subscription_id],
            )
        self.db.conn.commit()
        return cur.rowcount

    def set_paused(self, target: Target, paused: bool, reason: str | None = None) -> None:
        self.target_id(target)
        self.db.execute(
            "UPDATE targets SET paused = ?, paused_reason = ?, updated_at = ? WHERE key = ?",
            [int(paused), reason if paused else None, _now(), target.key],
        )
        self.db.conn.commit()

    # --- delivery -------------------------------------------------------------------------
    def version(self) -> int:
        """A counter the schema's triggers bump on any change that alters who gets alerts."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'subs_version'").fetchone()
        return int(row[0]) if row else 0

    def pause_target(self, target_id: int, reason: str) -> None:
        self.db.execute(
            "UPDATE targets SET paused = 1, paused_reason = ?, paused_at = ?, updated_at = ? "
            "WHERE id = ?",
            [reason, _now(), _now(), target_id],
        )
        self.db.conn.commit()

    def set_chat_type(self, target: Target, chat_type: str) -> None:
        """Record what kind of chat a target is (private, group, ...): groups pace slower."""
        self.target_id(target)
        self.db.execute(
            "UPDATE targets SET chat_type = ?, updated_at = ? WHERE key = ?",
            [chat_type, _now(), target.key],
        )
        self.db.conn.commit()

    def migrate_target(self, target_id: int, new_chat_id: str) -> int:
        """Move a target (subscriptions and queued deliveries) to a new chat id; its new id."""
        rows = _rows(self.db, "SELECT * FROM targets WHERE id = ?", [target_id])
        if not rows:
            return target_id
        old = to_target(rows[0])
        new = Target(platform=old.platform, chat_id=str(new_chat_id), thread_id=old.thread_id)
        live = "('pending', 'claimed', 'in_flight')"
        with self.db.atomic():
            found = _rows(self.db, "SELECT id FROM targets WHERE key = ?", [new.key])
            if not found:
                self.db.execute(
                    "UPDATE targets SET chat_id = ?, key = ?, chat_type = NULL, updated_at = ? "
                    "WHERE id = ?",
                    [new.chat_id, new.key, _now(), target_id],
                )
                return target_id
            into = int(found[0]["id"])
            self.db.execute(
                "UPDATE subscriptions SET target_id = ? WHERE target_id = ?", [into, target_id]
            )
            self.db.execute(
                f"UPDATE outbox SET target_id = ? WHERE target_id = ? AND state IN {live} "
                "AND (story_id IS NULL OR story_id NOT IN "
                "(SELECT story_id FROM outbox WHERE target_id = ? AND story_id IS NOT NULL))",
                [into, target_id, into],
            )
            self.db.execute(
                f"UPDATE outbox SET state = 'failed', last_error = ? WHERE target_id = ? "
                f"AND state IN {live}",
                ["already queued for the chat it migrated to", target_id],
            )
            self.db.execute(
                "UPDATE targets SET paused = 1, paused_reason = ?, paused_at = ?, updated_at = ? "
                "WHERE id = ?",
                [f"migrated to {new.chat_id}", _now(), _now(), target_id],
            )
        return into

    def digest_subscriptions(self) -> list[DigestSub]:
        rows = _rows(
            self.db,
            "SELECT s.*, t.platform, t.chat_id, t.thread_id, t.tz FROM subscriptions s "
            "JOIN targets t ON t.id = s.target_id WHERE s.mode = 'digest' AND t.paused = 0 "
            "ORDER BY s.id",
        )
        out: list[DigestSub] = []
        for r in rows:
            sub = self._to_sub({**r, "paused": 0, "paused_reason": None}, to_target(r))
            out.append(
                DigestSub(
                    subscription_id=sub.id,
                    target_id=int(r["target_id"]),
                    target=sub.target,
                    tz=r["tz"] or "UTC",
                    spec=sub.spec,
                    created_at=sub.created_at,
                    last_digest_at=parse_iso(r["last_digest_at"]),
                )
            )
        return out

    @staticmethod
    def _to_sub(r: dict[str, Any], target: Target) -> Subscription:
        spec = SubscriptionSpec(
            countries=loads_tuple(r["countries"]),
            topics=loads_tuple(r["topics"]),
            keywords=loads_tuple(r["keywords"]),
            excluded=loads_tuple(r["excluded"]),
            mode=Mode(r["mode"]),
            digest_time=r["digest_time"],
            digest_day=r.get("digest_day"),
            quiet_start=r.get("quiet_start"),
            quiet_end=r.get("quiet_end"),
        )
        return Subscription(
            id=int(r["id"]),
            target=target,
            spec=spec,
            paused=bool(r.get("paused", 0)),
            paused_reason=r.get("paused_reason"),
            created_at=parse_iso(r["created_at"]),
        )


class SqliteOutboxRepo:
    """Queued deliveries: claimed, marked in flight, then settled."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def depth(self) -> int:
        return int(
            self.db.execute(
                "SELECT count(*) FROM outbox WHERE state IN ('pending', 'claimed', 'in_flight')"
            ).fetchone()[0]
        )

    def pending_for_target(self, target: Target) -> list[OutboxRow]:
        rows = _rows(
            self.db,
            "SELECT o.* FROM outbox o JOIN targets t ON t.id = o.target_id "
            "WHERE t.key = ? AND o.state = 'pending' ORDER BY o.id",
            [target.key],
        )
        return [_to_outbox_row(r) for r in rows]

    def mark_sent(self, ids: Iterable[int]) -> None:
        with self.db.atomic():
            for row_id in ids:
                self.db.execute(
                    "UPDATE outbox SET state = 'sent', sent_at = ? WHERE id = ?", [_now(), row_id]
                )

    # --- the delivery worker ----------------------------------------------------------------
    def enqueue(self, rows: Sequence[OutboxRow]) -> int:
        """Queue rows; a dedupe key already present is skipped. How many were new."""
        added = 0
        with self.db.atomic():
            for row in rows:
                added += self._insert(row)
        return added

    def _insert(self, row: OutboxRow) -> int:
        return insert_outbox_row(self.db, row)

    def claim_due(self, now: float, platforms: Sequence[str], limit: int) -> list[DeliveryRow]:
        """Pending rows that are due, for unpaused targets on `platforms`, marked claimed."""
        if not platforms or limit <= 0:
            return []
        marks = ",".join("?" * len(platforms))
        with self.db.atomic():
            rows = _rows(
                self.db,
                "SELECT o.*, t.platform, t.chat_id, t.thread_id, t.chat_type, t.tz, "
                "s.quiet_start, s.quiet_end FROM outbox o "
                "JOIN targets t ON t.id = o.target_id "
                "LEFT JOIN subscriptions s ON s.id = o.subscription_id "
                "WHERE o.state = 'pending' "
                f"AND o.next_attempt_at <= ? AND t.paused = 0 AND t.platform IN ({marks}) "
                "ORDER BY o.id LIMIT ?",
                [now, *platforms, limit],
            )
            ids = [r["id"] for r in rows]
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                in_ids = ",".join("?" * len(part))
                self.db.execute(f"UPDATE outbox SET state = 'claimed' WHERE id IN ({in_ids})", part)
        return [
            DeliveryRow(
                id=int(r["id"]),
                dedupe_key=r["dedupe_key"],
                kind=r["kind"],
                story_id=r["story_id"],
                target_id=int(r["target_id"]),
                target=to_target(r),
                chat_type=r["chat_type"],
                nonce=r["nonce"],
                payload=json.loads(r["payload"] or "{}"),
                attempts=int(r["attempts"]),
                uncertain=bool(r["uncertain"]),
                tz=r["tz"] or "UTC",
                quiet_start=r["quiet_start"],
                quiet_end=r["quiet_end"],
            )
            for r in rows
        ]

    def next_due(self, platforms: Sequence[str]) -> float | None:
        """When the earliest pending row on `platforms` falls due (None: nothing pending)."""
        if not platforms:
            return None
        marks = ",".join("?" * len(platforms))
        row = self.db.execute(
            "SELECT min(o.next_attempt_at) FROM outbox o JOIN targets t ON t.id = o.target_id "
            f"WHERE o.state = 'pending' AND t.paused = 0 AND t.platform IN ({marks})",
            list(platforms),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def mark_in_flight(self, row_id: int, now: float) -> None:
        """Committed before the send, so a crash mid-send is visible at the next start."""
        self.db.execute(
            "UPDATE outbox SET state = 'in_flight', in_flight_at = ? WHERE id = ?", [now, row_id]
        )
        self.db.conn.commit()

    def settle_sent(
        self, row_id: int, message_id: str | None, now: float, shown_count: int = 0
    ) -> None:
        self.db.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, sent_ts = ?, platform_message_id = ?, "
            "shown_count = ?, last_error = NULL WHERE id = ?",
            [_now(), now, message_id, shown_count, row_id],
        )
        self.db.conn.commit()

    def settle_retry(
        self,
        row_id: int,
        next_attempt_at: float,
        error: str,
        *,
        state: str = "pending",
        count_attempt: bool = False,
        uncertain: bool = False,
    ) -> None:
        self.db.execute(
            "UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ?, "
            "attempts = attempts + ?, uncertain = MAX(uncertain, ?) WHERE id = ?",
            [state, next_attempt_at, error[:500], int(count_attempt), int(uncertain), row_id],
        )
        self.db.conn.commit()

    def settle_failed(self, row_id: int, reason: str, *, uncertain: bool = False) -> None:
        self.db.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, uncertain = MAX(uncertain, ?) "
            "WHERE id = ?",
            [reason[:500], int(uncertain), row_id],
        )
        self.db.conn.commit()

    def save_progress(self, row_id: int, payload: dict[str, Any]) -> None:
        """A multi-part message: remember which parts went out, so a restart resumes there."""
        self.db.execute(
            "UPDATE outbox SET state = 'claimed', payload = ? WHERE id = ?",
            [json.dumps(payload, ensure_ascii=False), row_id],
        )
        self.db.conn.commit()

    def release(self, row_ids: Iterable[int]) -> None:
        ids = list(row_ids)
        with self.db.atomic():
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                self.db.execute(
                    "UPDATE outbox SET state = 'pending' WHERE state = 'claimed' "
                    f"AND id IN ({','.join('?' * len(part))})",
                    part,
                )

    def defer(self, due: Sequence[tuple[int, float]], reason: str) -> None:
        """Put claimed rows back, each due at its own time (quiet hours): not an attempt."""
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ? "
                "WHERE id = ? AND state = 'claimed'",
                [(when, reason[:500], row_id) for row_id, when in due],
            )

    def by_message(self, target: Target, message_id: str) -> OutboxRow | None:
        """The delivery that became this platform message in this chat (for `/why`)."""
        rows = _rows(
            self.db,
            "SELECT o.* FROM outbox o JOIN targets t ON t.id = o.target_id "
            "WHERE t.key = ? AND o.platform_message_id = ? ORDER BY o.id DESC LIMIT 1",
            [target.key, str(message_id)],
        )
        if not rows:
            return None
        return _to_outbox_row(rows[0])

    def recover(self, idempotent_platforms: Iterable[str]) -> RecoveryCounts:
        """Settle what a stopped worker left: claimed rows back to pending; rows left in
        flight resent where the platform dedupes by nonce, else flagged uncertain and sent at
        most once more (a row found in flight a second time is not sent again)."""
        platforms = list(idempotent_platforms)
        marks = ",".join("?" * len(platforms)) or "NULL"
        with self.db.atomic():
            released = self.db.execute(
                "UPDATE outbox SET state = 'pending' WHERE state = 'claimed'"
            ).rowcount
            resent = self.db.execute(
                "UPDATE outbox SET state = 'pending' WHERE state = 'in_flight' AND target_id IN "
                f"(SELECT id FROM targets WHERE platform IN ({marks}))",
                platforms,
            ).rowcount
            failed = self.db.execute(
                "UPDATE outbox SET state = 'failed', last_error = ? "
                "WHERE state = 'in_flight' AND uncertain = 1",
                ["left in flight twice; not sent again so the chat gets no third copy"],
            ).rowcount
            uncertain = self.db.execute(
                "UPDATE outbox SET state = 'pending', uncertain = 1, last_error = ? "
                "WHERE state = 'in_flight'",
                ["left in flight by a stop: may have been delivered; sending once more"],
            ).rowcount
        return RecoveryCounts(
            released=released, resent=resent, uncertain=uncertain, failed=failed
        )

    def fail_pending_for_target(self, target_id: int, reason: str) -> int:
        cur = self.db.execute(
            "UPDATE outbox SET state = 'failed', last_error = ? WHERE target_id = ? "
            "AND state IN ('pending', 'claimed')",
            [reason[:500], target_id],
        )
        self.db.conn.commit()
        return int(cur.rowcount or 0)

    def edits_due(self, now: float, sent_since: float, limit: int) -> list[EditRow]:
        """Sent alerts whose story has more outlets than the message shows, edit time come."""
        since = datetime.fromtimestamp(sent_since, UTC)
        rows = _rows(
            self.db,
            "SELECT o.id, o.target_id, o.story_id, o.platform_message_id, o.payload, "
            "json_array_length(s.sources) AS outlets, t.platform, t.chat_id, t.thread_id, "
            "t.chat_type FROM stories s JOIN outbox o ON o.story_id = s.id "
            "JOIN targets t ON t.id = o.target_id "
            "WHERE s.last_seen >= ? AND json_array_length(s.sources) > 1 "
            "AND o.kind = 'alert' AND o.state = 'sent' AND o.platform_message_id IS NOT NULL "
            "AND o.sent_ts >= ? AND json_array_length(s.sources) > o.shown_count "
            "AND COALESCE(o.edit_after, 0) <= ? AND t.paused = 0 ORDER BY o.id LIMIT ?",
            [iso(since), sent_since, now, limit],
        )
        return [
            EditRow(
                id=int(r["id"]),
                target_id=int(r["target_id"]),
                target=to_target(r),
                chat_type=r["chat_type"],
                story_id=r["story_id"],
                message_id=str(r["platform_message_id"]),
                payload=json.loads(r["payload"] or "{}"),
                outlets=int(r["outlets"]),
            )
            for r in rows
        ]

    def settle_edit(self, row_id: int, shown_count: int | None, edit_after: float) -> None:
        self.db.execute(
            "UPDATE outbox SET shown_count = COALESCE(?, shown_count), edit_after = ? "
            "WHERE id = ?",
            [shown_count, edit_after, row_id],
        )
        self.db.conn.commit()

    _STORY_TEXT = (
        "SELECT s.id, s.title, s.url, s.countries, s.topics, s.first_seen, s.article_count, "
        "s.sources, a.summary, a.source, a.published FROM stories s JOIN articles a ON a.id = "
        "(SELECT x.id FROM articles x WHERE x.story_id = s.id AND x.kind = 'feed' "
        "ORDER BY x.seq LIMIT 1) WHERE s.relevant = 1 "
    )

    @staticmethod
    def _to_story_text(r: dict[str, Any]) -> StoryText:
        return StoryText(
            id=r["id"],
            title=r["title"],
            url=r["url"],
            summary=r["summary"] or "",
            outlet=r["source"],
            published=parse_iso(r["published"]),
            first_seen=parse_iso(r["first_seen"]) or datetime.now(UTC),
            countries=loads_tuple(r["countries"]),
            topics=loads_tuple(r["topics"]),
            article_count=int(r["article_count"]),
            sources=loads_tuple(r["sources"]),
        )

    def story_texts_since(self, since: datetime, limit: int = 2_000) -> list[StoryText]:
        rows = _rows(
            self.db,
            self._STORY_TEXT + "AND s.first_seen >= ? ORDER BY s.first_seen DESC LIMIT ?",
            [iso(since), limit],
        )
        return [self._to_story_text(r) for r in rows]

    def story_texts(self, story_ids: Sequence[str]) -> list[StoryText]:
        if not story_ids:
            return []
        marks = ",".join("?" * len(story_ids))
        found = {
            r["id"]: self._to_story_text(r)
            for r in _rows(self.db, self._STORY_TEXT + f"AND s.id IN ({marks})", list(story_ids))
        }
        return [found[i] for i in story_ids if i in found]

    def queue_digest(
        self,
        target_id: int,
        row: OutboxRow | None,
        when: datetime,
        subscription_ids: Sequence[int] = (),
    ) -> bool:
        """Queue a digest (None: nothing to send) and note the time on the subscriptions it
        serves (all the target's digest subscriptions when none are named), in one
        transaction."""
        with self.db.atomic():
            added = self._insert(row) if row is not None else 0
            if subscription_ids:
                ids = list(subscription_ids)
                self.db.execute(
                    "UPDATE subscriptions SET last_digest_at = ? WHERE target_id = ? "
                    f"AND id IN ({','.join('?' * len(ids))})",
                    [iso(when), target_id, *ids],
                )
            else:
                self.db.execute(
                    "UPDATE subscriptions SET last_digest_at = ? WHERE target_id = ? "
                    "AND mode = 'digest'",
                    [iso(when), target_id],
                )
        return added > 0

    def counts(self) -> dict[str, int]:
        """Rows per state, plus `uncertain`: for status, metrics and tests."""
        out = {
            str(r[0]): int(r[1])
            for r in self.db.execute("SELECT state, count(*) FROM outbox GROUP BY state")
        }
        row = self.db.execute("SELECT count(*) FROM outbox WHERE uncertain = 1").fetchone()
        out["uncertain"] = int(row[0])
        return out

    _LEASE = "delivery_lease"

    def read_lease(self) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [self._LEASE]).fetchone()
        return str(row[0]) if row else None

    def swap_lease(self, expected: str | None, new: str | None) -> bool:
        """Compare-and-set on the delivery lease, so two processes never both deliver."""
        if expected is None and new is None:
            return self.read_lease() is None
        if expected is None:
            cur = self.db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                [self._LEASE, new],
            )
        elif new is None:
            cur = self.db.execute(
                "DELETE FROM meta WHERE key = ? AND value = ?", [self._LEASE, expected]
            )
        else:
            cur = self.db.execute(
                "UPDATE meta SET value = ? WHERE key = ? AND value = ?",
                [new, self._LEASE, expected],
            )
        self.db.conn.commit()
        return cur.rowcount == 1


class SqliteConversationRepo:
    """Short per-chat memory so follow-up questions keep their context."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str, max_age_s: float) -> list[dict[str, Any]]:
        rows = _rows(self.db, "SELECT history, updated_at FROM conversations WHERE key = ?", [key])
        if not rows or time.time() - float(rows[0]["updated_at"]) > max_age_s:
            return []
        history = json.loads(rows[0]["history"])
        return history if isinstance(history, list) else []

    def put(self, key: str, history: list[dict[str, Any]]) -> None:
        self.db.execute(
            "INSERT INTO conversations(key, history, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET history = excluded.history, "
            "updated_at = excluded.updated_at",
            [key, json.dumps(history, ensure_ascii=False), time.time()],
        )
        self.db.conn.commit()


class SqliteMetaRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return str(row[0]) if row else None

    def set(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value",
            [key, value],
        )
        self.db.conn.commit()


class Store:
    """All repositories over one connection: what `app.py` hands the core."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sources = SqliteSourceRepo(db)
        self.articles = SqliteArticleRepo(db)
        self.subscriptions = SqliteSubscriptionRepo(db)
        self.outbox = SqliteOutboxRepo(db)
        self.conversations = SqliteConversationRepo(db)
        self.meta = SqliteMetaRepo(db)

    def close(self) -> None:
        self.db.close()
