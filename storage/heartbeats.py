"""Heartbeat rows in `meta`, one per process: written by `run`, read by `status`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from bot.ops.heartbeat import HEARTBEAT_PREFIX
from storage.rows import iso

FORGET_AFTER = timedelta(days=7)


def write_heartbeat(db: Database, key: str, value: str) -> None:
    """Upsert this process's row and drop rows of processes silent for a week."""
    with db.atomic():
        db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value",
            [key, value],
        )
        db.execute(
            "DELETE FROM meta WHERE key LIKE ? AND key != ? AND json_valid(value) "
            "AND json_extract(value, '$.at') < ?",
            [HEARTBEAT_PREFIX + "%", key, iso(datetime.now(UTC) - FORGET_AFTER)],
        )


def read_heartbeats(db: Database) -> list[str]:
    return [
        str(row[0])
        for row in db.execute("SELECT value FROM meta WHERE key LIKE ?", [HEARTBEAT_PREFIX + "%"])
    ]
