"""Retention: drop articles older than SW_RETENTION_DAYS, never what pending work still needs.

A story goes as a whole, once every article of it is older than the cut-off: half a story
would change its title and first outlet under the reader. Kept whatever their age: stories
with a delivery still pending (their alert is rendered from them), the digest and catch-up
look-back (those messages are built from recent stories), and the curated starter knowledge.
A story row that an outbox row names stays (it is small) so that an item coming back in a feed
after its articles were pruned cannot alert the same chat twice. The FTS index follows through
the schema's delete trigger. Work goes in small transactions so the bot's own writes wait
only briefly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from bot.core.deliver.digest import CATCHUP_DAYS, LOOKBACK_CAP
from storage.db import open_database
from storage.rows import iso

log = logging.getLogger(__name__)

LIVE = "('pending', 'claimed', 'in_flight')"
# Digests and catch-ups look back this far; a day more covers a digest due just now.
MIN_KEEP = max(LOOKBACK_CAP, timedelta(days=CATCHUP_DAYS)) + timedelta(days=1)
LAST_RUN_KEY = "retention_last_run"
BATCH = 200


@dataclass(frozen=True)
class RetentionResult:
    articles: int = 0
    stories: int = 0
    kept_for_pending: int = 0
    conversations: int = 0


def prune(
    db: Database, *, days: int, now: datetime | None = None, batch: int = BATCH
) -> RetentionResult:
    """Delete what is older than `days` (at least the digest look-back is always kept)."""
    now = now or datetime.now(UTC)
    cutoff = now - max(timedelta(days=days), MIN_KEEP)
    conn = db.conn
    conn.execute("DROP TABLE IF EXISTS temp.prune_candidates")
    conn.execute(
        "CREATE TEMP TABLE prune_candidates AS SELECT story_id AS id FROM articles "
        "GROUP BY story_id HAVING max(fetched_at) < ? AND total(kind = 'starter') = 0",
        [iso(cutoff)],
    )
    kept = conn.execute(
        "DELETE FROM temp.prune_candidates WHERE id IN ("
        f"SELECT story_id FROM outbox WHERE state IN {LIVE} AND story_id IS NOT NULL "
        "UNION SELECT a.story_id FROM outbox o JOIN articles a "
        "ON a.id = json_extract(o.payload, '$.article_id') "
        f"WHERE o.state IN {LIVE} AND json_valid(o.payload))"
    ).rowcount
    conn.commit()
    articles = stories = 0
    try:
        while True:
            ids = [
                r[0] for r in conn.execute("SELECT id FROM temp.prune_candidates LIMIT ?", [batch])
            ]
            if not ids:
                break
            marks = ",".join("?" * len(ids))
            with db.atomic():
                articles += conn.execute(
                    f"DELETE FROM articles WHERE story_id IN ({marks})", ids
                ).rowcount
                stories += conn.execute(
                    f"DELETE FROM stories WHERE id IN ({marks}) AND NOT EXISTS "
                    "(SELECT 1 FROM outbox o WHERE o.story_id = stories.id)",
                    ids,
                ).rowcount
                conn.execute(f"DELETE FROM temp.prune_candidates WHERE id IN ({marks})", ids)
        with db.atomic():
            conversations = conn.execute(
                "DELETE FROM conversations WHERE updated_at < ?", [cutoff.timestamp()]
            ).rowcount
            result = RetentionResult(articles, stories, max(kept, 0), conversations)
            note = {"at": iso(now), "cutoff": iso(cutoff), **asdict(result)}
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value",
                [LAST_RUN_KEY, json.dumps(note)],
            )
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.prune_candidates")
        conn.commit()
    log.info("retention pruned the store", extra={"cutoff": iso(cutoff), **asdict(result)})
    return result


def prune_file(db_path: Path | str, *, days: int) -> RetentionResult:
    """Prune on a connection of its own, so it can run in a thread beside the bot."""
    db = open_database(db_path, migrate=False)
    try:
        return prune(db, days=days)
    finally:
        db.close()
