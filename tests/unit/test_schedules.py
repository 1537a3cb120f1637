"""Weekly digests and quiet hours: how `/subscribe` reads them, when they are due, what is held."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.deliver.digest import due_digests
from bot.core.deliver.quiet import quiet_until
from bot.core.errors import UsageError
from bot.core.gazetteer import Gazetteer
from bot.core.models import Mode, SubscriptionSpec, Target
from bot.core.ports import DigestSub
from bot.core.subscribe_parse import describe, parse_subscribe


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def test_weekly_forms(gaz: Gazetteer) -> None:
    spec = parse_subscribe("KR weekly", gaz)
    assert (spec.mode, spec.digest_day, spec.digest_time) == (Mode.DIGEST, 0, "09:00")
    spec = parse_subscribe("KR weekly@fri@7:30", gaz)
    assert (spec.digest_day, spec.digest_time) == (4, "07:30")
    assert parse_subscribe("weekly@08:00@Sunday", gaz).digest_day == 6
    assert "weekly digest on Friday at 17:00" in describe(
        parse_subscribe("JP weekly@friday@17:00", gaz), gaz
    )
    assert parse_subscribe("weekly@mon digest@08:00", gaz).digest_day is None  # last one wins
    assert describe(parse_subscribe("KR digest@08:00", gaz), gaz).endswith("digest at 08:00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("weekly@someday", "weekly[@DAY][@HH:MM]"),
        ("weekly@mon@25:00", "weekly[@DAY][@HH:MM]"),
        ("quiet@22:00", "quiet@HH:MM-HH:MM"),
        ("quiet@22-07", "times are HH:MM"),
        ("quiet@07:00-07:00", "different times"),
        ("KR digest quiet@22:00-07:00", "quiet hours hold instant alerts"),
    ],
)
def test_bad_schedules_say_what_to_write(gaz: Gazetteer, args: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_subscribe(args, gaz)


def test_quiet_hours_parse_and_describe(gaz: Gazetteer) -> None:
    spec = parse_subscribe("KR quiet@22:00-7:00", gaz)
    assert (spec.mode, spec.quiet_start, spec.quiet_end) == (Mode.INSTANT, "22:00", "07:00")
    assert describe(spec, gaz).endswith("instant · quiet 22:00–07:00")


def test_quiet_window_wraps_midnight_in_the_targets_zone() -> None:
    at = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert quiet_until(at, "UTC", "22:00", "07:00") == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    early = datetime(2026, 3, 3, 6, 59, tzinfo=UTC)
    assert quiet_until(early, "UTC", "22:00", "07:00") == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 3, 3, 7, 0, tzinfo=UTC), "UTC", "22:00", "07:00") is None
    assert quiet_until(datetime(2026, 3, 3, 12, 0, tzinfo=UTC), "UTC", "22:00", "07:00") is None
    # 14:30 UTC is 23:30 in Seoul: quiet until 07:00 Seoul = 22:00 UTC.
    seoul = quiet_until(datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "Asia/Seoul", "22:00", "07:00")
    assert seoul == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    # A window within one day, and no window at all.
    assert quiet_until(datetime(2026, 3, 2, 13, 0, tzinfo=UTC), "UTC", "12:00", "14:00") == (
        datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    )
    assert quiet_until(at, "UTC", None, None) is None


def _weekly(
    day: int, at: str, last: datetime | None = None, sub_id: int = 10, target_id: int = 1
) -> DigestSub:
    return DigestSub(
        subscription_id=sub_id,
        target_id=target_id,
        target=Target("telegram", "-100"),
        tz="Europe/Paris",
        spec=SubscriptionSpec(mode=Mode.DIGEST, digest_time=at, digest_day=day),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        last_digest_at=last,
    )


def test_weekly_digest_is_due_once_a_week_on_its_day() -> None:
    # 2026-01-09 is a Friday; 17:00 in Paris (winter) is 16:00 UTC.
    thursday = datetime(2026, 1, 8, 18, 0, tzinfo=UTC)
    friday_before = datetime(2026, 1, 9, 15, 59, tzinfo=UTC)
    friday_after = datetime(2026, 1, 9, 16, 1, tzinfo=UTC)
    sub = _weekly(4, "17:00", last=datetime(2026, 1, 2, 16, 0, tzinfo=UTC))
    assert due_digests([sub], thursday) == []
    assert due_digests([sub], friday_before) == []
    (due,) = due_digests([sub], friday_after)
    assert due.weekday == 4 and due.local_date == "2026-01-09"
    assert due.dedupe_key == "digest:1:w4:2026-W02"
    assert due.since == datetime(2026, 1, 2, 16, 0, tzinfo=UTC)
    served = _weekly(4, "17:00", last=friday_after)
    assert due_digests([served], datetime(2026, 1, 13, 12, 0, tzinfo=UTC)) == []  # Tuesday
    # Missed while the bot was down: still due later in the week, under the same key.
    (late,) = due_digests([sub], datetime(2026, 1, 11, 9, 0, tzinfo=UTC))
    assert late.dedupe_key == due.dedupe_key


def test_daily_and_weekly_subscriptions_of_one_target_are_separate() -> None:
    daily = DigestSub(
        subscription_id=11,
        target_id=1,
        target=Target("telegram", "-100"),
        tz="Europe/Paris",
        spec=SubscriptionSpec(mode=Mode.DIGEST, digest_time="08:00"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        last_digest_at=None,
    )
    weekly = _weekly(4, "17:00", sub_id=12)
    found = due_digests([daily, weekly], datetime(2026, 1, 9, 16, 30, tzinfo=UTC))
    assert {(d.weekday, d.subscription_ids) for d in found} == {(None, (11,)), (4, (12,))}
    assert len({d.dedupe_key for d in found}) == 2
