"""Digest timing (local time, once a day) and content (grouped, ranked, split, never empty)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.deliver.digest import (
    DueDigest,
    build_catchup,
    build_digest,
    due_digests,
    grouped_text,
)
from bot.core.models import Mode, SubscriptionSpec, Target
from bot.core.ports import DigestSub, StoryText

SEOUL_TARGET = Target("telegram", "-100")


def sub(
    at: str = "09:00",
    tz: str = "Asia/Seoul",
    last: datetime | None = None,
    created: datetime | None = None,
    target_id: int = 1,
    **spec: tuple[str, ...],
) -> DigestSub:
    return DigestSub(
        subscription_id=target_id * 10,
        target_id=target_id,
        target=SEOUL_TARGET,
        tz=tz,
        spec=SubscriptionSpec(mode=Mode.DIGEST, digest_time=at, **spec),  # type: ignore[arg-type]
        created_at=created or datetime(2026, 1, 1, tzinfo=UTC),
        last_digest_at=last,
    )


def story(n: int, country: str | None, reports: int = 1, hours_ago: float = 1.0) -> StoryText:
    when = datetime(2026, 1, 10, 12, tzinfo=UTC) - timedelta(hours=hours_ago)
    return StoryText(
        id=f"s{n}",
        title=f"Story {n}",
        url=f"https://news.example/{n}",
        summary="About national AI.",
        outlet=f"Outlet {n}",
        published=when,
        first_seen=when,
        countries=(country,) if country else (),
        topics=("models",),
        article_count=reports,
        sources=tuple(f"O{i}" for i in range(reports)),
    )


def test_due_at_local_time_once_a_day() -> None:
    # 09:00 in Seoul is 00:00 UTC.
    before = datetime(2026, 1, 10, 23, 59, tzinfo=UTC) - timedelta(days=1)
    assert due_digests([sub()], before) == []
    after = datetime(2026, 1, 10, 0, 5, tzinfo=UTC)
    (due,) = due_digests([sub()], after)
    assert due.local_date == "2026-01-10"
    served = sub(last=datetime(2026, 1, 10, 0, 5, tzinfo=UTC))
    assert due_digests([served], after + timedelta(hours=3)) == []
    (next_day,) = due_digests([served], after + timedelta(days=1))
    assert next_day.local_date == "2026-01-11"
    assert next_day.since == datetime(2026, 1, 10, 0, 5, tzinfo=UTC)


def test_unknown_zone_falls_back_to_utc_and_new_subscriptions_wait_a_day() -> None:
    now = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)
    assert due_digests([sub(tz="Mars/Olympus")], now)
    late = sub(tz="UTC", created=datetime(2026, 1, 10, 9, 10, tzinfo=UTC))
    assert due_digests([late], now) == []
    assert due_digests([late], now + timedelta(days=1))


def test_one_digest_per_target_at_its_earliest_time() -> None:
    now = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    subs = [sub(at="08:00", tz="UTC"), sub(at="06:00", tz="UTC", countries=("JP",))]
    (due,) = due_digests(subs, now)
    assert len(due.specs) == 2


def test_grouped_by_country_most_reported_first() -> None:
    stories = [story(1, "JP", 1), story(2, "KR", 5), story(3, "KR", 2), story(4, None, 1)]
    (text,) = grouped_text(
        stories, budget=5000, country_name=lambda c: {"KR": "South Korea"}[c] if c == "KR" else c
    )
    lines = text.splitlines()
    assert lines[0] == "🇰🇷 South Korea"
    assert lines[1].startswith("• Story 2 — Outlet 2") and "5 outlets" in lines[1]
    assert lines[2] == "  https://news.example/2"
    assert text.index("Story 3") < text.index("JP") < text.index("Other")


def test_long_digests_split_with_repeated_headers() -> None:
    stories = [story(i, "KR", 1, hours_ago=i / 10) for i in range(40)]
    parts = grouped_text(stories, budget=600, country_name=lambda c: c)
    assert len(parts) > 2
    assert all(len(p) <= 600 for p in parts)
    assert parts[1].startswith("🇰🇷 KR (cont.)")
    assert sum(p.count("• ") for p in parts) == 40


def test_empty_digest_is_not_built_and_rows_are_keyed_per_day() -> None:
    due = DueDigest(
        target_id=7,
        target=SEOUL_TARGET,
        local_date="2026-01-10",
        since=datetime(2026, 1, 9, tzinfo=UTC),
        specs=(SubscriptionSpec(countries=("FR",), mode=Mode.DIGEST),),
    )
    assert build_digest(due, [story(1, "KR")]) is None
    row = build_digest(due, [story(1, "FR"), story(2, "KR")])
    assert row is not None
    assert row.dedupe_key == "digest:7:2026-01-10"
    assert row.payload["parts"] and "Story 1" in row.payload["parts"][0]
    assert "Story 2" not in row.payload["parts"][0]


def test_catchup_is_one_compact_message() -> None:
    stories = [story(i, "KR", 1, hours_ago=i) for i in range(30)]
    row = build_catchup(3, SEOUL_TARGET, 99, SubscriptionSpec(countries=("KR",)), stories)
    assert row is not None and row.dedupe_key == "catchup:99" and row.kind == "catchup"
    (part,) = row.payload["parts"]
    assert part.count("• ") == 10 and "and 20 more" in part
    assert build_catchup(3, SEOUL_TARGET, 99, SubscriptionSpec(countries=("FR",)), stories) is None
