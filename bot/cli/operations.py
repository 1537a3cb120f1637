"""The operator's commands: `status` and `backup` (kept apart from the chat and feed commands)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.config import Settings
from bot.ops.heartbeat import Heartbeat
from bot.ops.progress import progress
from bot.ops.status import StatusFacts, ago, status_lines
from storage.backup import backup_database, last_backup
from storage.db import open_database
from storage.heartbeats import read_heartbeats
from storage.repositories import Store
from storage.retention import LAST_RUN_KEY
from storage.stats import collect_stats


def show_status(settings: Settings) -> int:
    """Everything an operator asks first, read from the store (works while the bot runs)."""
    store = Store(open_database(settings.db_path))
    try:
        now = datetime.now(UTC)
        stats = collect_stats(store.db, now)
        backup = last_backup(settings.db_path)
        facts = StatusFacts(
            sources=store.sources.all(),
            outbox_depth=stats.outbox_depth,
            outbox_oldest_age=stats.outbox_oldest_age,
            heartbeats=[hb for raw in read_heartbeats(store.db) if (hb := Heartbeat.decode(raw))],
            now=now,
            store_path=str(settings.db_path),
            last_backup=f"{backup.path} ({backup.at})" if backup else "none recorded",
        )
        lines = status_lines(facts, full=True)
        extra = [f"articles: {stats.articles}  stories: {stats.stories}"]
        for platform, counts in sorted(stats.alerts.items()):
            extra.append(
                f"alerts {platform}: {counts.sent} sent, {counts.live} waiting, "
                f"{counts.failed} failed, {counts.retries} retries"
            )
        extra.append(f"retention: {_retention(store.meta.get(LAST_RUN_KEY), now)}")
        at = next(i for i, line in enumerate(lines) if line.startswith("feeds:"))
        for line in lines[:at] + extra + lines[at:]:
            print(line)
        return 0
    finally:
        store.close()


def _retention(raw: str | None, now: datetime) -> str:
    if not raw:
        return "not run yet"
    try:
        note = json.loads(raw)
        when = datetime.fromisoformat(note["at"])
        return (
            f"last run {ago((now - when).total_seconds())} ago: {note['articles']} articles, "
            f"{note['stories']} stories pruned, {note['kept_for_pending']} kept for pending work"
        )
    except (ValueError, KeyError, TypeError):
        return "unknown"


def make_backup(settings: Settings, path: str) -> int:
    """An online backup; a bar on a terminal, since a large store takes a while."""
    with progress(None, "backing up", unit="page") as bar:

        def step(done: int, total: int) -> None:
            if bar.total != total:
                bar.set_total(total)
            bar.update(done - bar.done)

        result = backup_database(settings.db_path, path, progress=step)
    print(
        f"backup written to {result.path} ({result.bytes} bytes, {result.pages} pages, "
        f"{result.seconds:.1f}s)"
    )
    return 0
