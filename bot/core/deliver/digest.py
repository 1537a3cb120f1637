"""Digests and the catch-up a new subscription gets: when they are due, what they say.

A daily digest goes out once a day at the target's HH:MM in its time zone; a weekly one once a
week on its weekday at HH:MM. Each holds the matching stories first seen since the previous one,
grouped by country with the most-reported and newest first, and is queued through the outbox
under `digest:{target}:{local date}` (weekly: `digest:{target}:w{day}:{ISO week}`) so it is
sent once. An empty digest is not sent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.deliver.match import spec_matches
from bot.core.deliver.render import TEXT_BUDGET, shorten, utf16_len
from bot.core.gazetteer import flag
from bot.core.models import SubscriptionSpec, Target
from bot.core.ports import DigestSub, OutboxRow, StoryText

MAX_DIGEST_STORIES = 60
CATCHUP_DAYS = 7
CATCHUP_STORIES = 10
LOOKBACK_CAP = timedelta(days=7)

CountryName = Callable[[str], str]


@dataclass(frozen=True)
class DueDigest:
    target_id: int
    target: Target
    local_date: str
    since: datetime
    specs: tuple[SubscriptionSpec, ...]
    subscription_ids: tuple[int, ...] = ()
    weekday: int | None = None  # set for a weekly digest

    @property
    def dedupe_key(self) -> str:
        if self.weekday is None:
            return f"digest:{self.target_id}:{self.local_date}"
        year, week, _ = datetime.fromisoformat(self.local_date).isocalendar()
        return f"digest:{self.target_id}:w{self.weekday}:{year}-W{week:02d}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _hhmm(text: str) -> tuple[int, int]:
    try:
        hour, minute = (int(x) for x in text.split(":", 1))
    except ValueError:
        return 9, 0
    return min(max(hour, 0), 23), min(max(minute, 0), 59)


def _weekday(spec: SubscriptionSpec) -> int | None:
    day = spec.digest_day
    return day if day is not None and 0 <= day <= 6 else None


def _last_slot(local_now: datetime, hour: int, minute: int, weekday: int | None) -> datetime:
    """The latest scheduled local time at or before now (daily: today's, maybe still ahead)."""
    slot = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if weekday is None:
        return slot
    slot -= timedelta(days=(local_now.weekday() - weekday) % 7)
    return slot - timedelta(days=7) if slot > local_now else slot


def due_digests(subs: Sequence[DigestSub], now: datetime) -> list[DueDigest]:
    """Targets whose digest time has come (local time) and not yet been served.

    A target's daily subscriptions make one digest, at the earliest of their times; its weekly
    ones one per weekday, at the earliest time for that day. A subscription made after the
    scheduled time gets its first digest at the next one.
    """
    by_slot: dict[tuple[int, int | None], list[DigestSub]] = defaultdict(list)
    for sub in subs:
        by_slot[(sub.target_id, _weekday(sub.spec))].append(sub)
    due: list[DueDigest] = []
    for (target_id, weekday), group in by_slot.items():
        local_now = now.astimezone(zone(group[0].tz))
        hour, minute = min(_hhmm(s.spec.digest_time) for s in group)
        scheduled_local = _last_slot(local_now, hour, minute, weekday)
        if local_now < scheduled_local:
            continue
        scheduled = scheduled_local.astimezone(UTC)
        served = [s.last_digest_at for s in group if s.last_digest_at is not None]
        last = max(served) if served else None
        if last is not None and last >= scheduled:
            continue
        created = [s.created_at for s in group if s.created_at is not None]
        if last is None and created and min(created) >= scheduled:
            continue
        period = timedelta(days=1 if weekday is None else 7)
        since = last or (min(created) if created else scheduled - period)
        since = max(since, scheduled - LOOKBACK_CAP)
        due.append(
            DueDigest(
                target_id=target_id,
                target=group[0].target,
                local_date=scheduled_local.date().isoformat(),
                since=since,
                specs=tuple(s.spec for s in group),
                subscription_ids=tuple(s.subscription_id for s in group),
                weekday=weekday,
            )
        )
    return due


def matching(stories: Sequence[StoryText], specs: Sequence[SubscriptionSpec]) -> list[StoryText]:
    out: list[StoryText] = []
    for story in stories:
        text = f"{story.title}\n{story.summary}"
        if any(spec_matches(spec, story.countries, story.topics, text) for spec in specs):
            out.append(story)
    return out


def _when(story: StoryText) -> datetime:
    return story.published or story.first_seen


def _rank(story: StoryText) -> tuple[int, int, float]:
    """Newest day first, then most-reported, then newest (ascending sort on negations)."""
    when = _when(story)
    reports = max(story.article_count, len(story.sources))
    return (-when.date().toordinal(), -reports, -when.timestamp())


def _entry(story: StoryText) -> str:
    outlets = max(len(story.sources), 1)
    meta = [story.outlet, _when(story).date().isoformat()]
    if outlets > 1:
        meta.append(f"{outlets} outlets")
    return f"• {shorten(story.title, 200)} — {' · '.join(m for m in meta if m)}\n  {story.url}"


def grouped_text(
    stories: Sequence[StoryText],
    *,
    budget: int,
    country_name: CountryName,
    limit: int = MAX_DIGEST_STORIES,
) -> list[str]:
    """Stories grouped by their first country, as parts of at most `budget` UTF-16 units."""
    chosen = sorted(stories, key=_rank)[:limit]
    left_out = len(stories) - len(chosen)
    groups: dict[str, list[StoryText]] = defaultdict(list)
    for story in chosen:
        groups[story.countries[0] if story.countries else ""].append(story)
    order = sorted(
        groups,
        key=lambda c: (-sum(max(s.article_count, 1) for s in groups[c]), c == "", c),
    )
    parts: list[str] = []
    current = ""
    for code in order:
        header = f"{flag(code)} {country_name(code)}".strip() if code else "Other"
        for n, story in enumerate(groups[code]):
            entry = _entry(story)
            block = f"{header}\n{entry}" if n == 0 else entry
            sep = "\n\n" if n == 0 else "\n"
            candidate = f"{current}{sep}{block}" if current else block
            if current and utf16_len(candidate) > budget:
                parts.append(current)
                candidate = block if n == 0 else f"{header} (cont.)\n{entry}"
            current = candidate
    if left_out > 0 and current:
        current += f"\n\n…and {left_out} more."
    if current:
        parts.append(current)
    return parts


def digest_row(due: DueDigest, parts: Sequence[str], title: str) -> OutboxRow:
    return OutboxRow(
        dedupe_key=due.dedupe_key,
        kind="digest",
        story_id=None,
        target_id=due.target_id,
        subscription_id=None,
        nonce=uuid.uuid4().hex[:22],
        payload={"title": title, "parts": list(parts), "parts_done": 0},
    )


def build_digest(
    due: DueDigest,
    stories: Sequence[StoryText],
    *,
    country_name: CountryName = lambda code: code,
) -> OutboxRow | None:
    """The digest for one target, or None when nothing matched (an empty digest is not sent)."""
    chosen = [s for s in matching(stories, due.specs) if s.first_seen >= due.since]
    if not chosen:
        return None
    budget = TEXT_BUDGET.get(due.target.platform, TEXT_BUDGET["telegram"])
    parts = grouped_text(chosen, budget=budget, country_name=country_name)
    count = len(chosen)
    kind = "Digest" if due.weekday is None else "Weekly digest"
    title = f"{kind} {due.local_date}: {count} stor{'y' if count == 1 else 'ies'}"
    return digest_row(due, parts, title)


def build_catchup(
    target_id: int,
    target: Target,
    subscription_id: int,
    spec: SubscriptionSpec,
    stories: Sequence[StoryText],
    *,
    country_name: CountryName = lambda code: code,
) -> OutboxRow | None:
    """One compact message with the last week's matching stories, so a new chat is not silent."""
    chosen = matching(stories, [spec])
    if not chosen:
        return None
    budget = TEXT_BUDGET.get(target.platform, TEXT_BUDGET["telegram"])
    parts = grouped_text(chosen, budget=budget, country_name=country_name, limit=CATCHUP_STORIES)
    title = f"The last {CATCHUP_DAYS} days: {len(chosen)} matching stor" + (
        "y" if len(chosen) == 1 else "ies"
    )
    return OutboxRow(
        dedupe_key=f"catchup:{subscription_id}",
        kind="catchup",
        story_id=None,
        target_id=target_id,
        subscription_id=subscription_id,
        nonce=uuid.uuid4().hex[:22],
        payload={"title": title, "parts": parts[:1], "parts_done": 0},
    )
