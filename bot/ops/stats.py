"""Plain figures read from the store at scrape or status time (filled in by `storage.stats`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlatformAlerts:
    """Outbox rows of one platform, by what became of them (counts since the store began)."""

    queued: int = 0  # every row ever queued, whatever its state now
    live: int = 0  # pending, claimed or in flight
    sent: int = 0
    failed: int = 0
    retries: int = 0  # failed attempts that were tried again


@dataclass(frozen=True)
class StoreStats:
    articles: int = 0
    stories: int = 0
    outbox_depth: int = 0
    outbox_oldest_age: float = 0.0  # seconds the oldest undelivered row has waited
    alerts: dict[str, PlatformAlerts] = field(default_factory=dict)
