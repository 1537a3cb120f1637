"""Quiet hours: when an instant alert that falls inside a target's quiet window may go out.

Nothing is dropped: the delivery worker puts such an alert back in the outbox, due at the end
of the window (the target's time zone, default UTC). A window may wrap midnight (22:00-07:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.deliver.digest import zone


def _minutes(text: str) -> int | None:
    try:
        hour, minute = (int(x) for x in text.split(":", 1))
    except ValueError:
        return None
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return hour * 60 + minute


def quiet_until(now: datetime, tz: str, start: str | None, end: str | None) -> datetime | None:
    """The UTC time the quiet window around `now` ends, or None when `now` is not in one."""
    if not start or not end:
        return None
    first, last = _minutes(start), _minutes(end)
    if first is None or last is None or first == last:
        return None
    local = now.astimezone(zone(tz))
    at = local.hour * 60 + local.minute
    inside = first <= at < last if first < last else (at >= first or at < last)
    if not inside:
        return None
    ends = local.replace(hour=last // 60, minute=last % 60, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(UTC)
