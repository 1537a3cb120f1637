"""Store figures for `/metrics` and `status`: counts and ages, read in one short pass."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlite_utils import Database

from bot.ops.stats import PlatformAlerts, StoreStats
from storage.rows import parse_iso

LIVE = "('pending', 'claimed', 'in_flight')"


def collect_stats(db: Database, now: datetime | None = None) -> StoreStats:
    now = now or datetime.now(UTC)
    articles = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    stories = int(db.execute("SELECT count(*) FROM stories").fetchone()[0])
    depth, oldest = db.execute(
        f"SELECT count(*), min(created_at) FROM outbox WHERE state IN {LIVE}"
    ).fetchone()
    oldest_at = parse_iso(oldest)
    alerts = {
        str(platform): PlatformAlerts(
            queued=int(queued),
            live=int(live),
            sent=int(sent),
            failed=int(failed),
            retries=int(retries),
        )
        for platform, queued, live, sent, failed, retries in db.execute(
            f"SELECT t.platform, count(*), total(o.state IN {LIVE}), total(o.state = 'sent'), "
            "total(o.state = 'failed'), total(o.attempts) FROM outbox o "
            "JOIN targets t ON t.id = o.target_id GROUP BY t.platform"
        )
    }
    return StoreStats(
        articles=articles,
        stories=stories,
        outbox_depth=int(depth),
        outbox_oldest_age=max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0,
        alerts=alerts,
    )
