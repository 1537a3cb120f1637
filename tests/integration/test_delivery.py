"""The delivery worker on a real store: against a recording sender, and through the real
python-telegram-bot and discord.py clients against local fake platforms that enforce the
published limits."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord.http
import pytest

from bot.adapters.discord_sender import DiscordAlertSender, open_discord_sender
from bot.adapters.telegram_sender import TelegramAlertSender, open_telegram_sender
from bot.app import build_app
from bot.config import load_settings
from bot.core.deliver.match import make_matcher
from bot.core.deliver.ratelimit import DISCORD_LIMITS, TELEGRAM_LIMITS
from bot.core.deliver.worker import DeliveryBusy, DeliveryWorker, PlatformPolicy, WorkerConfig
from bot.core.errors import (
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RateLimited,
    TransientDeliveryError,
)
from bot.core.models import Mode, SubscriptionSpec, Target
from storage.repositories import Store
from tests.fakes.discord_api import MISSING_PERMISSIONS, FakeDiscord
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.delivery_support import (
    RecordingSender,
    add_story,
    add_target,
    digest_spec,
    make_store,
    queue_alerts,
    rows,
)

FAST = WorkerConfig(
    poll_seconds=1,
    backoff_base=0.05,
    backoff_cap=0.3,
    uncertain_retry_delay=0.05,
    max_attempts=4,
    edits_every=0.05,
    digest_every=0.05,
    edit_every=60.0,
)
HOSTILE_TITLES = [
    "@everyone <b>Korea</b> **wins** <script>alert(1)</script>",
    "Tom & Jerry <i>open</i> [a lab](https://evil.example) @here",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = make_store(tmp_path / "store" / "sw.db")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


def by_state(store: Store) -> dict[str, int]:
    return store.outbox.counts()


# The recording sender has no real limits to respect: run Telegram's rules 20 times faster.
QUICK = {
    "telegram": PlatformPolicy(TELEGRAM_LIMITS.scaled(0.05)),
    "discord": PlatformPolicy(DISCORD_LIMITS.scaled(0.05), idempotent=True, thread_is_channel=True),
}


def worker(store: Store, *senders: RecordingSender) -> DeliveryWorker:
    return DeliveryWorker(store, {s.platform: s for s in senders}, policies=QUICK, config=FAST)


# --- the engine with a recording sender -----------------------------------------------------


async def test_each_alert_goes_once_and_is_settled(store: Store) -> None:
    targets = [add_target(store, "telegram", str(100 + i)) for i in range(5)]
    stories = [add_story(store, n) for n in range(3)]
    for sid in stories:
        assert queue_alerts(store, sid, targets) == 5
        assert queue_alerts(store, sid, targets) == 0  # the dedupe key holds
    sender = RecordingSender()
    stats = await worker(store, sender).drain_once()
    assert stats.sent == 15
    pairs = [(s.target.chat_id, s.body.story_id) for s in sender.sent]  # type: ignore[union-attr]
    assert sorted(pairs) == sorted({(str(100 + i), sid) for i in range(5) for sid in stories})
    for chat in range(5):  # each chat gets its stories in queue order
        got = [s.body.story_id for s in sender.to(str(100 + chat))]  # type: ignore[union-attr]
        assert got == stories
    assert all(r["state"] == "sent" and r["platform_message_id"] for r in rows(store))
    again = await worker(store, sender).drain_once()
    assert again.sent == 0 and len(sender.sent) == 15


async def test_transient_errors_back_off_then_give_up_with_the_reason(store: Store) -> None:
    good, bad = add_target(store, "telegram", "1"), add_target(store, "telegram", "2")
    queue_alerts(store, add_story(store, 1), [good, bad])
    sender = RecordingSender(fail={"2": [TransientDeliveryError("502 Bad Gateway")] * 10})
    stats = await worker(store, sender).drain_once()
    assert stats.sent == 1 and stats.failed == 1 and stats.retried == FAST.max_attempts - 1
    failed = next(r for r in rows(store) if r["target_id"] == bad)
    assert failed["state"] == "failed"
    assert "gave up after 4 attempts: 502 Bad Gateway" in str(failed["last_error"])


async def test_permanent_error_pauses_the_target_after_one_attempt(store: Store) -> None:
    blocked = add_target(store, "telegram", "66")
    others = [add_target(store, "telegram", str(i)) for i in range(3)]
    for n in range(3):
        queue_alerts(store, add_story(store, n), [blocked, *others])
    sender = RecordingSender(
        fail={"66": [PermanentDeliveryError("Forbidden: bot was blocked by the user", "blocked")]}
    )
    stats = await worker(store, sender).drain_once()
    assert stats.sent == 9 and stats.paused_targets == 1
    assert not sender.fail["66"]  # exactly one attempt was made
    target = Target("telegram", "66")
    subs = store.subscriptions.for_target(target)
    assert subs and subs[0].paused and "blocked" in str(subs[0].paused_reason)
    dead = [r for r in rows(store) if r["target_id"] == blocked]
    assert {r["state"] for r in dead} == {"failed"}
    assert any("target paused: blocked" in str(r["last_error"]) for r in dead)
    # New alerts are not even queued for a paused target; /subscribe (or /start) resumes it.
    assert blocked not in {tid for tid, _ in store.subscriptions.active()}
    store.subscriptions.set_paused(target, False)
    assert blocked in {tid for tid, _ in store.subscriptions.active()}


async def test_429s_from_several_chats_pause_the_whole_platform(store: Store) -> None:
    tids = [add_target(store, "telegram", str(i)) for i in range(5)]
    queue_alerts(store, add_story(store, 1), tids)
    limited = RateLimited("Too Many Requests: retry after 1", 0.5)
    sender = RecordingSender(fail={"0": [limited], "1": [limited], "2": [limited]})
    started = asyncio.get_running_loop().time()
    stats = await worker(store, sender).drain_once()
    assert stats.sent == 5 and stats.rate_limited == 3
    assert all(s.t - started >= 0.5 for s in sender.to("3") + sender.to("4"))


async def test_a_bad_message_fails_alone(store: Store) -> None:
    tid = add_target(store, "telegram", "5")
    queue_alerts(store, add_story(store, 1), [tid])
    queue_alerts(store, add_story(store, 2), [tid])
    sender = RecordingSender(
        fail={"5": [PermanentDeliveryError("Bad Request: can't parse", "bad_request")]}
    )
    stats = await worker(store, sender).drain_once()
    assert stats.failed == 1 and stats.sent == 1 and stats.paused_targets == 0


async def test_unanswered_telegram_send_is_repeated_at_most_once(store: Store) -> None:
    once, twice = add_target(store, "telegram", "1"), add_target(store, "telegram", "2")
    queue_alerts(store, add_story(store, 1), [once, twice])
    lost = DeliveryOutcomeUnknown("httpx.ReadTimeout")
    sender = RecordingSender(fail={"1": [lost], "2": [lost, lost, lost]})
    stats = await worker(store, sender).drain_once()
    by_target = {r["target_id"]: r for r in rows(store)}
    assert by_target[once]["state"] == "sent" and by_target[once]["uncertain"] == 1
    assert by_target[twice]["state"] == "failed" and by_target[twice]["uncertain"] == 1
    assert "not sent again" in str(by_target[twice]["last_error"])
    assert sender.fail["2"] == [lost]  # two tries, never a third
    assert stats.uncertain == 2


async def test_unanswered_discord_send_is_simply_resent(store: Store) -> None:
    tid = add_target(store, "discord", "900")
    queue_alerts(store, add_story(store, 1), [tid])
    sender = RecordingSender(platform="discord", fail={"900": [DeliveryOutcomeUnknown("reset")]})
    await worker(store, sender).drain_once()
    (row,) = rows(store)
    assert row["state"] == "sent" and row["uncertain"] == 0
    assert sender.sent[0].nonce == row["nonce"]


async def test_restart_after_a_crash_follows_each_platforms_rule(store: Store) -> None:
    tg = [add_target(store, "telegram", str(i)) for i in range(3)]
    dc = add_target(store, "discord", "77")
    queue_alerts(store, add_story(store, 1), [*tg, dc])
    ids = {r["target_id"]: r["id"] for r in rows(store)}
    # What a kill -9 leaves: rows claimed, rows in flight, one already resent once before.
    store.db.execute(
        "UPDATE outbox SET state = 'in_flight' WHERE target_id IN (?, ?, ?)", [tg[0], tg[1], dc]
    )
    store.db.execute("UPDATE outbox SET uncertain = 1 WHERE target_id = ?", [tg[1]])
    store.db.execute("UPDATE outbox SET state = 'claimed' WHERE target_id = ?", [tg[2]])
    store.db.conn.commit()
    tg_sender, dc_sender = RecordingSender(), RecordingSender(platform="discord")
    stats = await worker(store, tg_sender, dc_sender).drain_once()
    assert (stats.recovered.uncertain, stats.recovered.failed) == (1, 1)
    assert (stats.recovered.resent, stats.recovered.released) == (1, 1)
    state = {r["id"]: r for r in rows(store)}
    assert state[ids[tg[0]]]["state"] == "sent" and state[ids[tg[0]]]["uncertain"] == 1
    assert state[ids[tg[1]]]["state"] == "failed"  # in flight twice: no third copy
    assert state[ids[tg[2]]]["state"] == "sent" and state[ids[tg[2]]]["uncertain"] == 0
    assert state[ids[dc]]["state"] == "sent" and state[ids[dc]]["uncertain"] == 0
    assert dc_sender.sent[0].nonce == state[ids[dc]]["nonce"]  # same nonce: Discord dedupes
    assert sorted(s.target.chat_id for s in tg_sender.sent) == ["0", "2"]


async def test_only_one_live_worker_delivers(store: Store) -> None:
    first = DeliveryWorker(store, {"telegram": RecordingSender()}, config=FAST)
    assert first._take_lease()
    lease = store.outbox.read_lease()
    assert lease is not None
    # As if another live process (here: our parent) held it.
    other = lease.replace(f'"pid": {os.getpid()}', f'"pid": {os.getppid()}')
    assert store.outbox.swap_lease(lease, other)
    with pytest.raises(DeliveryBusy):
        await DeliveryWorker(store, {"telegram": RecordingSender()}, config=FAST).drain_once()
    # A lease left by a process that died is taken over at once.
    dead = other.replace(f'"pid": {os.getppid()}', '"pid": 999999999')
    assert store.outbox.swap_lease(other, dead)
    await DeliveryWorker(store, {"telegram": RecordingSender()}, config=FAST).drain_once()
    assert store.outbox.read_lease() is None  # released at the end


async def test_run_forever_picks_up_new_rows_promptly_and_stops_cleanly(store: Store) -> None:
    tid = add_target(store, "telegram", "1")
    sender = RecordingSender()
    worker = DeliveryWorker(store, {"telegram": sender}, config=WorkerConfig(poll_seconds=1.0))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.sleep(0.2)
    queued = time.monotonic()
    queue_alerts(store, add_story(store, 1), [tid])
    while not sender.sent and time.monotonic() - queued < 3:
        await asyncio.sleep(0.01)
    assert sender.sent and sender.sent[0].t - asyncio.get_running_loop().time() < 1
    assert time.monotonic() - queued <= 0.1 + 0.05  # within a tenth of the poll interval
    stop.set()
    await asyncio.wait_for(task, 5)
    assert store.outbox.read_lease() is None


async def test_matcher_index_follows_subscription_changes(store: Store) -> None:
    matcher = make_matcher(store.subscriptions.active, store.subscriptions.version)
    from tests.integration.delivery_support import article_of

    sid = add_story(store, 1, countries=("KR",), topics=("compute",))
    story = store.articles.recent_stories(datetime.now(UTC) - timedelta(days=1))[0]
    art = store.articles.articles_of_story(sid)[0]
    new_article = type("A", (), {"id": art.id, "title": art.title, "summary": art.summary})
    assert matcher(story, new_article, True) == []  # type: ignore[arg-type]
    kr = add_target(store, "telegram", "1", spec=SubscriptionSpec(countries=("KR",)))
    add_target(store, "telegram", "2", spec=SubscriptionSpec(countries=("JP",)))
    anyc = add_target(store, "telegram", "3", spec=SubscriptionSpec(topics=("compute",)))
    add_target(store, "telegram", "4", spec=SubscriptionSpec(keywords=("quantum",)))
    found = matcher(story, new_article, True)  # type: ignore[arg-type]
    assert sorted(r.target_id for r in found) == sorted([kr, anyc])
    assert matcher(story, new_article, False) == []  # type: ignore[arg-type]
    store.subscriptions.pause_target(kr, "blocked: test")
    found = matcher(story, new_article, True)  # type: ignore[arg-type]
    assert [r.target_id for r in found] == [anyc]
    assert article_of(store, sid) == art.id


class Clock:
    """A wall clock set to a chosen moment that runs on from there (and can be moved)."""

    def __init__(self, at: datetime) -> None:
        self.offset = at.timestamp() - time.time()

    def wall(self) -> float:
        return time.time() + self.offset

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def set(self, at: datetime) -> None:
        self.offset = at.timestamp() - time.time()


async def test_alert_matched_in_quiet_hours_arrives_when_they_end(store: Store) -> None:
    clock = Clock(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))
    night = SubscriptionSpec(countries=("KR",), quiet_start="22:00", quiet_end="07:00")
    sleeper = add_target(store, "telegram", "81", spec=night)
    add_target(store, "telegram", "82")
    sid = add_story(store, 1)
    story = store.articles.recent_stories(datetime.now(UTC) - timedelta(days=1))[0]
    art = store.articles.articles_of_story(sid)[0]
    matcher = make_matcher(store.subscriptions.active)
    store.outbox.enqueue(matcher(story, art, True))  # type: ignore[arg-type]

    def run() -> DeliveryWorker:
        return DeliveryWorker(
            store,
            {"telegram": sender},
            policies=QUICK,
            config=FAST,
            wall=clock.wall,
            now_utc=clock.utc,
        )

    sender = RecordingSender()
    await run().drain_once(max_wait=2)
    assert len(sender.to("82")) == 1 and sender.to("81") == []  # held, not dropped
    (held,) = [r for r in rows(store) if r["target_id"] == sleeper]
    ends = datetime(2026, 3, 3, 7, 0, tzinfo=UTC).timestamp()
    assert held["state"] == "pending" and abs(float(held["next_attempt_at"]) - ends) < 1  # type: ignore[arg-type]
    assert held["attempts"] == 0 and "quiet hours" in str(held["last_error"])
    clock.set(datetime(2026, 3, 3, 6, 59, 30, tzinfo=UTC))
    await run().drain_once(max_wait=2)
    assert sender.to("81") == []  # not before the hours end
    clock.set(datetime(2026, 3, 3, 7, 0, 0, tzinfo=UTC))
    await run().drain_once(max_wait=2)
    assert len(sender.to("81")) == 1 and len(sender.to("82")) == 1
    assert {r["state"] for r in rows(store)} == {"sent"}


async def test_weekly_digest_goes_on_its_day_once_a_week(store: Store) -> None:
    weekly = SubscriptionSpec(
        countries=("KR",), mode=Mode.DIGEST, digest_time="17:00", digest_day=4
    )
    tid = add_target(store, "telegram", "91", spec=weekly)
    store.subscriptions.add(Target("telegram", "91"), digest_spec("08:00", countries=("KR",)))
    (sub, daily) = store.subscriptions.for_target(Target("telegram", "91"))
    assert sub.spec == weekly and daily.spec.digest_day is None  # stored and read back
    created = datetime.fromisoformat(str(rows_of(store, "subscriptions")[0]["created_at"]))
    friday = created + timedelta(days=(4 - created.weekday()) % 7 + 7)
    at = friday.replace(hour=17, minute=5, second=0, microsecond=0)
    add_story(store, 1, title="Korean chips weekly", when=at - timedelta(days=2))
    clock = Clock(at)
    worker = DeliveryWorker(
        store, {"telegram": RecordingSender()}, config=FAST, wall=clock.wall, now_utc=clock.utc
    )
    assert worker.schedule_digests() == 2  # the daily one and the weekly one, separately
    keys = sorted(str(r["dedupe_key"]) for r in rows(store))
    year, week, _ = at.isocalendar()
    assert keys == sorted([f"digest:{tid}:{at.date()}", f"digest:{tid}:w4:{year}-W{week:02d}"])
    add_story(store, 2, title="Korean chips again", when=at + timedelta(hours=20))
    clock.set(at + timedelta(days=1))  # Saturday: a daily digest is due, the weekly one not
    assert worker.schedule_digests() == 1
    assert worker.schedule_digests() == 0
    assert sum(":w4:" in str(r["dedupe_key"]) for r in rows(store)) == 1
    clock.set(at + timedelta(days=7))  # the next Friday: only the weekly one has news
    assert worker.schedule_digests() == 1
    weekly_rows = [r for r in rows(store) if ":w4:" in str(r["dedupe_key"])]
    assert len(weekly_rows) == 2 and "Weekly digest" in str(weekly_rows[-1]["payload"])


def rows_of(store: Store, table: str) -> list[dict[str, object]]:
    cur = store.db.execute(f"SELECT * FROM {table} ORDER BY id")
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


async def test_new_subscription_gets_last_weeks_stories_in_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SW_DB_PATH", str(tmp_path / "app.db"))
    app = build_app(load_settings(None), load_starter=False)
    try:
        for n in range(4):
            add_story(app.store, n, when=datetime.now(UTC) - timedelta(days=n + 1))
        add_story(app.store, 9, countries=("FR",), when=datetime.now(UTC) - timedelta(days=1))
        add_story(app.store, 10, when=datetime.now(UTC) - timedelta(days=9))  # too old
        target = Target("telegram", "314")
        reply = app.service.subscribe(target, "KR")
        assert "4 matching stories from the last 7 days will follow" in reply.text
        sender = RecordingSender()
        await worker(app.store, sender).drain_once()
        (message,) = sender.sent
        assert message.kind == "text" and message.body.title.startswith("The last 7 days")  # type: ignore[union-attr]
        body = message.body.text  # type: ignore[union-attr]
        assert body.count("• ") == 4 and "South Korea" in body
        assert app.service.subscribe(Target("telegram", "315"), "BR").text.count("follow") == 0
    finally:
        app.close()


# --- Telegram, through python-telegram-bot, against the fake Bot API -----------------------


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def tg_sender(tg: FakeTelegram) -> AsyncIterator[TelegramAlertSender]:
    sender = await open_telegram_sender(tg.token, base_url=tg.base_url)
    yield sender
    await sender.close()


def tg_worker(
    store: Store, sender: TelegramAlertSender, config: WorkerConfig = FAST
) -> DeliveryWorker:
    return DeliveryWorker(store, {"telegram": sender}, config=config)


def sends(tg: FakeTelegram, chat: int) -> list[tuple[float, int, str]]:
    return [(r.t, r.status, r.outcome) for r in tg.requests("sendMessage") if r.chat_id == chat]


async def test_telegram_private_chats_each_get_one_valid_message(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    chats = [1000 + i for i in range(40)]
    targets = [add_target(store, "telegram", str(c)) for c in chats]
    queue_alerts(store, add_story(store, 1, title="Korea names five AI teams"), targets)
    started = time.monotonic()
    stats = await tg_worker(store, tg_sender).drain_once()
    assert stats.sent == 40 and tg.rejected == 0
    assert all(len(tg.sent_messages(c)) == 1 for c in chats)
    assert tg.max_in_window(None, 1.0) <= 30
    assert time.monotonic() - started < 40 / 30 + 2
    message = tg.sent_messages(chats[0])[0]
    assert message["parse_mode"] == "HTML"
    assert message["plain_text"].startswith("🇰🇷 Korea names five AI teams")
    keyboard = message["reply_markup"]["inline_keyboard"]
    assert keyboard[0][0]["callback_data"] == "mute:country:KR"


async def test_telegram_group_and_forum_topic(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    tg.set_chat(-1001, "supergroup", is_forum=True)
    tid = add_target(store, "telegram", "-1001", thread_id="7", chat_type="supergroup")
    queue_alerts(store, add_story(store, 1), [tid])
    queue_alerts(store, add_story(store, 2), [tid])
    await tg_worker(store, tg_sender).drain_once()
    sent = tg.sent_messages(-1001)
    assert [m["thread_id"] for m in sent] == [7, 7]
    assert sent[1]["t"] - sent[0]["t"] >= 1.0  # one a second in a chat
    assert tg.rejected == 0


async def test_telegram_429_storm_waits_for_retry_after_and_loses_nothing(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    slow, other = 501, 502
    t_slow, t_other = (
        add_target(store, "telegram", str(slow)),
        add_target(store, "telegram", str(other)),
    )
    for n in range(3):
        queue_alerts(store, add_story(store, n), [t_slow, t_other])
    tg.storm_429("sendMessage", retry_after=1, n=2, chat_id=slow)
    stats = await tg_worker(store, tg_sender).drain_once()
    assert stats.sent == 6 and stats.rate_limited == 2
    assert len(tg.sent_messages(slow)) == 3 and len(tg.sent_messages(other)) == 3
    log = sends(tg, slow)
    rejected = [t for t, status, _ in log if status == 429]
    assert len(rejected) == 2
    for t in rejected:  # after each 429, the next try came no sooner than retry_after
        later = [x for x, _, _ in log if x > t]
        assert later and min(later) - t >= 1.0
    assert sends(tg, other)[0][0] < rejected[-1] + 1.0  # the other chat was not held up


async def test_telegram_long_retry_after_is_scheduled_not_slept(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    slow, other = 601, 602
    t_slow, t_other = (
        add_target(store, "telegram", str(slow)),
        add_target(store, "telegram", str(other)),
    )
    queue_alerts(store, add_story(store, 1), [t_slow, t_other])
    tg.storm_429("sendMessage", retry_after=120, n=1, chat_id=slow)
    started = time.time()
    stats = await tg_worker(store, tg_sender).drain_once(max_wait=2)
    assert stats.sent == 1 and len(tg.sent_messages(other)) == 1
    row = next(r for r in rows(store) if r["target_id"] == t_slow)
    assert row["state"] == "pending"  # kept, not dropped, not failed
    assert float(row["next_attempt_at"]) >= started + 119  # type: ignore[arg-type]
    assert "retry after 120" in str(row["last_error"])
    assert len(sends(tg, slow)) == 1  # and not hammered meanwhile


async def test_telegram_5xx_burst_is_retried_without_duplicates(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    chats = [700 + i for i in range(6)]
    targets = [add_target(store, "telegram", str(c)) for c in chats]
    queue_alerts(store, add_story(store, 1), targets)
    tg.fail_next("sendMessage", 500, "Internal Server Error", n=5)
    stats = await tg_worker(store, tg_sender).drain_once()
    assert stats.sent == 6 and stats.failed == 0
    assert all(len(tg.sent_messages(c)) == 1 for c in chats)
    assert all(r["uncertain"] == 0 for r in rows(store))  # a 5xx is a clear "not taken"


async def test_telegram_dead_targets_are_marked_after_one_attempt(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    blocked, missing, kicked, alive, group, supergroup = 801, 802, -803, 804, -805, -1009
    tg.set_chat(kicked, "group", bot_status="kicked")
    tg.set_chat(blocked, "private", bot_status="kicked")
    tg.set_chat(group, "group")
    tg.migrate_chat(group, supergroup)
    tg.fail_next("sendMessage", 400, "Bad Request: chat not found", n=1, chat_id=missing)
    ids = {
        c: add_target(store, "telegram", str(c)) for c in (blocked, missing, kicked, alive, group)
    }
    for n in range(2):
        queue_alerts(store, add_story(store, n), list(ids.values()))
    stats = await tg_worker(store, tg_sender).drain_once()
    for chat, reason in ((blocked, "blocked"), (missing, "not_found"), (kicked, "kicked")):
        assert len(sends(tg, chat)) == 1  # one attempt, though two alerts were queued
        subs = store.subscriptions.for_target(Target("telegram", str(chat)))
        assert subs and subs[0].paused and subs[0].paused_reason.startswith(reason)  # type: ignore[union-attr]
    assert len(tg.sent_messages(alive)) == 2
    # The migrated group: subscriptions moved to the supergroup, which got both alerts.
    assert store.subscriptions.for_target(Target("telegram", str(group))) == []
    moved = store.subscriptions.for_target(Target("telegram", str(supergroup)))
    assert moved and not moved[0].paused
    assert len(tg.sent_messages(supergroup)) == 2
    assert stats.paused_targets == 3 and stats.migrated == 1


async def test_telegram_lost_answer_gives_at_most_one_flagged_repeat(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    once, twice = 901, 902
    t_once, t_twice = (
        add_target(store, "telegram", str(once)),
        add_target(store, "telegram", str(twice)),
    )
    queue_alerts(store, add_story(store, 1), [t_once, t_twice])
    tg.drop_response_next("sendMessage", n=1, chat_id=once)
    tg.drop_response_next("sendMessage", n=2, chat_id=twice)
    await tg_worker(store, tg_sender).drain_once()
    state = {r["target_id"]: r for r in rows(store)}
    assert len(tg.sent_messages(once)) == 2  # the platform kept both: one repeat...
    assert state[t_once]["state"] == "sent" and state[t_once]["uncertain"] == 1  # ...flagged
    assert len(sends(tg, twice)) == 2  # unanswered twice: no endless retry
    assert state[t_twice]["state"] == "failed" and state[t_twice]["uncertain"] == 1


@pytest.mark.parametrize("title", HOSTILE_TITLES)
async def test_telegram_hostile_titles_arrive_inert(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender, title: str
) -> None:
    tid = add_target(store, "telegram", "42")
    queue_alerts(
        store, add_story(store, 1, title=title, summary=title, outlet="<b>Bad</b> & co"), [tid]
    )
    stats = await tg_worker(store, tg_sender).drain_once()
    assert stats.sent == 1  # the fake parses HTML like Telegram: it was well-formed
    (message,) = tg.sent_messages(42)
    shown = message["plain_text"].replace("\u200b", "")
    assert title in shown and "<b>Bad</b> & co" in shown


async def test_telegram_later_reports_edit_the_alert_once_per_interval(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    tid = add_target(store, "telegram", "55")
    sid = add_story(store, 1, outlet="First Daily")
    queue_alerts(store, sid, [tid])
    await tg_worker(store, tg_sender).drain_once()
    add_story(store, 2, story_id=sid, outlet="Second Times")
    await asyncio.sleep(1.05)  # a fresh worker does not know the chat's last send
    stats = await tg_worker(store, tg_sender).drain_once()
    (message,) = tg.sent_messages(55)
    assert stats.edited == 1 and len(message["edits"]) == 1
    assert "Also reported by: Second Times" in message["plain_text"]
    add_story(store, 3, story_id=sid, outlet="Third Post")
    stats = await tg_worker(store, tg_sender).drain_once()
    assert stats.edited == 0  # at most one edit per message per interval
    assert (rows(store)[0]["shown_count"]) == 2


async def test_telegram_429_on_an_edit_waits_and_the_edit_follows(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    tid = add_target(store, "telegram", "56")
    sid = add_story(store, 1, outlet="First Daily")
    queue_alerts(store, sid, [tid])
    await tg_worker(store, tg_sender).drain_once()
    add_story(store, 2, story_id=sid, outlet="Second Times")
    await asyncio.sleep(1.05)
    tg.storm_429("editMessageText", retry_after=1, n=1, chat_id=56)
    first = await tg_worker(store, tg_sender).drain_once()
    assert first.rate_limited == 1 and first.edited == 0
    await asyncio.sleep(1.05)
    second = await tg_worker(store, tg_sender).drain_once()
    assert second.edited == 1
    edits = [r for r in tg.requests("editMessageText") if r.chat_id == 56]
    assert [r.status for r in edits] == [429, 200]
    assert edits[1].t - edits[0].t >= 1.0
    assert "Second Times" in tg.sent_messages(56)[0]["plain_text"]


async def test_telegram_digest_goes_once_and_empty_ones_not_at_all(
    store: Store, tg: FakeTelegram, tg_sender: TelegramAlertSender
) -> None:
    now = datetime.now(UTC)
    at = (now + timedelta(minutes=1)).strftime("%H:%M")
    wants = add_target(store, "telegram", "71", spec=digest_spec(at, countries=("KR",)))
    add_target(store, "telegram", "72", spec=digest_spec(at, countries=("FR",)))
    for n in range(3):
        add_story(store, n, title=f"Korean story {n}", when=now + timedelta(seconds=30))
    later = now + timedelta(minutes=2)
    worker = DeliveryWorker(store, {"telegram": tg_sender}, config=FAST, now_utc=lambda: later)
    assert worker.schedule_digests() == 1
    assert worker.schedule_digests() == 0
    await worker.drain_once()
    again = DeliveryWorker(store, {"telegram": tg_sender}, config=FAST, now_utc=lambda: later)
    await again.drain_once()
    (digest,) = tg.sent_messages(71)
    assert "Digest" in digest["plain_text"] and "🇰🇷" in digest["plain_text"]
    assert digest["plain_text"].count("https://news.example/") == 3
    assert tg.sent_messages(72) == []
    (row,) = [r for r in rows(store) if r["kind"] == "digest"]
    assert row["target_id"] == wants and row["state"] == "sent"


# --- Discord, through discord.py's REST client, against the fake API ----------------------

GUILD = 5000


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    saved = discord.http.Route.BASE
    async with FakeDiscord() as server:
        yield server
    discord.http.Route.BASE = saved


@pytest.fixture
async def dc_sender(dc: FakeDiscord) -> AsyncIterator[DiscordAlertSender]:
    sender = await open_discord_sender(dc.token, api_base_url=dc.rest_base)
    yield sender
    await sender.close()


def dc_worker(store: Store, sender: DiscordAlertSender) -> DeliveryWorker:
    return DeliveryWorker(store, {"discord": sender}, config=FAST)


def channel_posts(dc: FakeDiscord, channel: int) -> list[int]:
    return [r.status for r in dc.matching(rf"^/channels/{channel}/messages$", "POST")]


async def test_discord_each_alert_once_with_nonce_and_no_mentions(
    store: Store, dc: FakeDiscord, dc_sender: DiscordAlertSender
) -> None:
    channels = [GUILD + 10 + i for i in range(8)]
    dc.add_guild(GUILD, channels=channels)
    targets = [add_target(store, "discord", str(c)) for c in channels]
    for n in range(3):
        queue_alerts(store, add_story(store, n, title=HOSTILE_TITLES[0]), targets)
    stats = await dc_worker(store, dc_sender).drain_once()
    assert stats.sent == 24 and dc.rejected == 0
    nonces = {r["nonce"] for r in rows(store)}
    for channel in channels:
        messages = dc.messages[channel]
        assert len(messages) == 3
        for m in messages:
            assert m["enforce_nonce"] and m["nonce"] in nonces
            assert m["allowed_mentions"] == {"parse": []}
            assert m["pings"] == {"everyone": False, "users": [], "roles": []} or not any(
                m["pings"].values()
            )
            assert "@everyone" not in m["embeds"][0]["title"]
            assert m["components"][0]["components"][0]["custom_id"] == "mute:country:KR"


async def test_discord_lost_answer_is_deduplicated_by_the_nonce(
    store: Store, dc: FakeDiscord, dc_sender: DiscordAlertSender
) -> None:
    channel = GUILD + 20
    dc.add_guild(GUILD, channels=[channel])
    queue_alerts(store, add_story(store, 1), [add_target(store, "discord", str(channel))])
    dc.drop_response_next(rf"^/channels/{channel}/messages$", n=1, method="POST")
    stats = await dc_worker(store, dc_sender).drain_once()
    assert stats.sent == 1
    assert len(dc.messages[channel]) == 1  # resent with the same nonce: no repeat
    assert dc.nonce_hits == 1
    assert rows(store)[0]["uncertain"] == 0


async def test_discord_dead_channels_are_paused_after_one_attempt(
    store: Store, dc: FakeDiscord, dc_sender: DiscordAlertSender
) -> None:
    ok, no_perm, gone = GUILD + 31, GUILD + 32, GUILD + 39
    dc.add_guild(GUILD, channels=[ok, no_perm])
    dc.fail_next(rf"^/channels/{no_perm}/messages$", 403, 1, MISSING_PERMISSIONS, method="POST")
    targets = {c: add_target(store, "discord", str(c)) for c in (ok, no_perm, gone)}
    for n in range(2):
        queue_alerts(store, add_story(store, n), list(targets.values()))
    stats = await dc_worker(store, dc_sender).drain_once()
    assert len(dc.messages[ok]) == 2
    for channel, reason in ((no_perm, "forbidden"), (gone, "not_found")):
        assert len(channel_posts(dc, channel)) == 1
        (sub,) = store.subscriptions.for_target(Target("discord", str(channel)))
        assert sub.paused and str(sub.paused_reason).startswith(reason)
    assert stats.paused_targets == 2
    assert dc.invalid_requests < 100


async def test_discord_429_storm_and_5xx_burst_lose_nothing(
    store: Store, dc: FakeDiscord, dc_sender: DiscordAlertSender
) -> None:
    stormy, flaky, calm = GUILD + 41, GUILD + 42, GUILD + 43
    dc.add_guild(GUILD, channels=[stormy, flaky, calm])
    targets = [add_target(store, "discord", str(c)) for c in (stormy, flaky, calm)]
    for n in range(2):
        queue_alerts(store, add_story(store, n), targets)
    dc.storm_429(rf"^/channels/{stormy}/messages$", retry_after=1.0, n=2, method="POST")
    dc.fail_next(rf"^/channels/{flaky}/messages$", 503, 2, method="POST")
    stats = await dc_worker(store, dc_sender).drain_once()
    assert stats.sent == 6
    for channel in (stormy, flaky, calm):
        assert len(dc.messages[channel]) == 2
    log = dc.matching(rf"^/channels/{stormy}/messages$", "POST")
    for i, r in enumerate(log):
        if r.status == 429:
            assert all(x.t - r.t >= 1.0 for x in log[i + 1 :])
    assert dc.rejected < 100


async def test_discord_long_global_429_pauses_the_platform(
    store: Store, dc: FakeDiscord, dc_sender: DiscordAlertSender
) -> None:
    channels = [GUILD + 50 + i for i in range(4)]
    dc.add_guild(GUILD, channels=channels)
    queue_alerts(
        store, add_story(store, 1), [add_target(store, "discord", str(c)) for c in channels]
    )
    dc.storm_429(r"^/channels/\d+/messages$", retry_after=40.0, n=1, global_=True, method="POST")
    stats = await dc_worker(store, dc_sender).drain_once(max_wait=1.5)
    posts = dc.matching(r"^/channels/\d+/messages$", "POST")
    assert [r.status for r in posts] == [429]  # nobody else tried during the global pause
    assert stats.rate_limited == 1 and stats.sent == 0
    states = by_state(store)
    assert states.get("pending") == 4
    assert any("global" in str(r["last_error"]) for r in rows(store))


# --- how each client's errors map onto the worker's decisions ------------------------------


def test_telegram_error_mapping() -> None:
    import httpx
    from telegram.error import (
        BadRequest,
        ChatMigrated,
        Forbidden,
        NetworkError,
        RetryAfter,
        TimedOut,
    )

    from bot.adapters.telegram_sender import map_error as tg_map
    from bot.core.errors import TargetMigrated

    def caused(exc: Exception, cause: Exception) -> Exception:
        exc.__cause__ = cause
        return exc

    limited = tg_map(RetryAfter(7))
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    moved = tg_map(ChatMigrated(-1001))
    assert isinstance(moved, TargetMigrated) and moved.new_chat_id == "-1001"
    kinds = {
        "Forbidden: bot was blocked by the user": (Forbidden, "blocked"),
        "Forbidden: bot was kicked from the group chat": (Forbidden, "kicked"),
        "Forbidden: user is deactivated": (Forbidden, "not_found"),
        "Bad Request: chat not found": (BadRequest, "not_found"),
        "Bad Request: message thread not found": (BadRequest, "not_found"),
        "Bad Request: need administrator rights in the channel chat": (BadRequest, "forbidden"),
        "Bad Request: can't parse entities": (BadRequest, "bad_request"),
    }
    for text, (cls, kind) in kinds.items():
        mapped = tg_map(cls(text))
        assert isinstance(mapped, PermanentDeliveryError) and mapped.kind == kind, text
    request = httpx.Request("POST", "http://x")
    not_sent = tg_map(caused(TimedOut(), httpx.ConnectTimeout("t", request=request)))
    assert type(not_sent) is TransientDeliveryError
    maybe = tg_map(caused(TimedOut(), httpx.ReadTimeout("t", request=request)))
    assert isinstance(maybe, DeliveryOutcomeUnknown)
    dropped = tg_map(caused(NetworkError("x"), httpx.RemoteProtocolError("gone", request=request)))
    assert isinstance(dropped, DeliveryOutcomeUnknown)
    assert type(tg_map(NetworkError("Internal Server Error"))) is TransientDeliveryError


def test_discord_error_mapping() -> None:
    import aiohttp
    import discord

    from bot.adapters.discord_sender import map_error as dc_map

    class Response:
        def __init__(self, status: int) -> None:
            self.status = status
            self.reason = "x"
            self.headers = {"Retry-After": "12"}

    def http(cls: type[discord.HTTPException], status: int, code: int) -> Exception:
        return cls(Response(status), {"code": code, "message": "m"})  # type: ignore[arg-type]

    assert dc_map(http(discord.Forbidden, 403, 50013)).kind == "forbidden"  # type: ignore[attr-defined]
    assert dc_map(http(discord.Forbidden, 403, 50001)).kind == "forbidden"  # type: ignore[attr-defined]
    assert dc_map(http(discord.NotFound, 404, 10003)).kind == "not_found"  # type: ignore[attr-defined]
    assert type(dc_map(http(discord.DiscordServerError, 503, 0))) is TransientDeliveryError
    edge = dc_map(http(discord.HTTPException, 429, 0))
    assert isinstance(edge, RateLimited) and edge.scope == "global" and edge.retry_after == 12
    long = dc_map(discord.RateLimited(45.0), global_hint=True)
    assert isinstance(long, RateLimited) and long.scope == "global"
    assert isinstance(dc_map(TimeoutError()), DeliveryOutcomeUnknown)
    assert isinstance(dc_map(aiohttp.ServerDisconnectedError()), DeliveryOutcomeUnknown)
