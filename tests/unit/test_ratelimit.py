"""Token buckets: windows anchored on answers, spacing, pauses, fair sharing across chats."""

from __future__ import annotations

import asyncio
import math
import random
import time

from bot.core.deliver.ratelimit import (
    DISCORD_LIMITS,
    PENDING_GRACE,
    SMOOTH,
    TELEGRAM_LIMITS,
    TELEGRAM_PAID_LIMITS,
    Bucket,
    PlatformLimiter,
    PlatformLimits,
    Spacing,
    Window,
)


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_window_counts_from_the_answer_of_the_send_count_places_back() -> None:
    bucket = Bucket([Window(2, 1.0)])
    assert bucket.ready_at(0.0) == 0.0
    first = bucket.begin(0.0)
    assert bucket.ready_at(0.0) == 0.0  # one of two used
    second = bucket.begin(0.0)
    assert bucket.ready_at(0.1) is None  # the first is unanswered: the platform may count it late
    bucket.finish(first, 0.2)
    ready = bucket.ready_at(0.3)
    assert ready is not None and 1.2 < ready < 1.22  # one window after the answer, a hair more
    bucket.finish(second, 0.25)
    assert bucket.ready_at(5.0) == 5.0


def test_a_hung_send_holds_its_bucket_only_for_a_grace_period() -> None:
    bucket = Bucket([Window(1, 1.0)])
    bucket.begin(0.0)  # never answered
    assert bucket.ready_at(1.0) is None
    ready = bucket.ready_at(PENDING_GRACE + 0.5)
    assert ready is not None and PENDING_GRACE + 1.0 < ready < PENDING_GRACE + 1.02


def test_spacing_smooths_starts_and_pause_holds_everything() -> None:
    bucket = Bucket([Spacing(0.5)])
    bucket.begin(10.0)
    assert bucket.ready_at(10.1) == 10.5
    bucket.pause(20.0)
    assert bucket.ready_at(10.6) == 20.0
    bucket.pause(15.0)  # a shorter pause never shortens a longer one
    assert bucket.ready_at(10.6) == 20.0


def test_idle_bucket_is_forgotten_only_when_nothing_matters() -> None:
    bucket = Bucket([Window(1, 1.0)])
    send = bucket.begin(0.0)
    assert not bucket.idle(1.0)  # unanswered
    bucket.finish(send, 0.1)
    assert not bucket.idle(1.0)
    assert bucket.idle(100.0)
    bucket.pause(200.0)
    assert not bucket.idle(100.0)


def test_published_limits_and_scaling() -> None:
    assert Window(30, 1.0) in TELEGRAM_LIMITS.shared
    assert TELEGRAM_LIMITS.chat == (Window(1, 1.0),)
    assert TELEGRAM_LIMITS.group == (Window(20, 60.0),)
    assert Window(1000, 1.0) in TELEGRAM_PAID_LIMITS.shared
    assert Window(50, 1.0) in DISCORD_LIMITS.shared
    assert DISCORD_LIMITS.chat == (Window(5, 5.0),)
    fast = TELEGRAM_LIMITS.scaled(0.1)
    assert fast.group == (Window(20, 6.0),)
    spacing = next(r.seconds for r in fast.shared if isinstance(r, Spacing))
    assert math.isclose(spacing, 0.1 * SMOOTH / 30)


def test_keys_per_action() -> None:
    tg = PlatformLimiter(TELEGRAM_LIMITS)
    assert tg.keys("5") == ["chat:5"]
    assert tg.keys("-5", group=True) == ["chat:-5", "group:-5"]
    assert tg.keys("-5", group=True, edit=True) == ["chat:-5", "group:-5"]  # edits count as sends
    dc = PlatformLimiter(DISCORD_LIMITS)
    assert dc.keys("9", edit=True) == ["edit:9"]


async def _send_through(
    limiter: PlatformLimiter, keys: list[str], arrivals: list[float], latency: float
) -> None:
    permit = await limiter.acquire(keys)
    start = time.monotonic()
    try:
        await asyncio.sleep(latency)
    finally:
        end = time.monotonic()
        # The platform counts the request at some moment between start and answer.
        arrivals.append(random.uniform(start, end))
        permit.done()


async def test_shared_window_holds_whatever_the_latency() -> None:
    limits = PlatformLimits(shared=(Window(10, 0.2), Spacing(0.2 / 10)), chat=())
    limiter = PlatformLimiter(limits)
    arrivals: list[float] = []
    jobs = [
        _send_through(limiter, [f"chat:{i}"], arrivals, random.uniform(0.0, 0.03))
        for i in range(60)
    ]
    started = time.monotonic()
    await asyncio.gather(*jobs)
    elapsed = time.monotonic() - started
    assert len(arrivals) == 60
    assert max_in_window(arrivals, 0.2) <= 10
    assert elapsed < 60 / 10 * 0.2 * 1.6  # and not much slower than the limit allows


async def test_one_chat_waits_for_its_answer_plus_a_window() -> None:
    limiter = PlatformLimiter(PlatformLimits(shared=(), chat=(Window(1, 0.1),)))
    arrivals: list[float] = []
    for _ in range(5):
        await _send_through(limiter, ["chat:1"], arrivals, 0.01)
    gaps = [b - a for a, b in zip(sorted(arrivals), sorted(arrivals)[1:], strict=False)]
    assert min(gaps) > 0.1


async def test_a_paused_chat_does_not_hold_up_others() -> None:
    limiter = PlatformLimiter(PlatformLimits(shared=(Spacing(0.001),), chat=(Window(1, 0.05),)))
    limiter.pause(["chat:slow"], 0.5)
    done: dict[str, float] = {}

    async def one(key: str) -> None:
        permit = await limiter.acquire([key])
        permit.done()
        done[key] = time.monotonic()

    started = time.monotonic()
    await asyncio.gather(one("chat:slow"), *(one(f"chat:{i}") for i in range(20)))
    assert done["chat:slow"] - started >= 0.5
    assert max(t for k, t in done.items() if k != "chat:slow") - started < 0.3


async def test_shared_pause_stops_every_chat() -> None:
    limiter = PlatformLimiter(PlatformLimits(shared=(Spacing(0.001),), chat=()))
    limiter.pause_shared(0.3)
    started = time.monotonic()
    permits = await asyncio.gather(*(limiter.acquire([f"chat:{i}"]) for i in range(5)))
    for p in permits:
        p.done()
    assert time.monotonic() - started >= 0.3


async def test_waiters_for_the_shared_bucket_keep_their_order() -> None:
    limiter = PlatformLimiter(PlatformLimits(shared=(Spacing(0.01),), chat=()))
    order: list[int] = []

    async def one(i: int) -> None:
        permit = await limiter.acquire([f"chat:{i}"])
        order.append(i)
        permit.done()

    tasks = []
    for i in range(30):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == list(range(30))


async def test_cancelled_waiter_leaves_the_gate_usable() -> None:
    limiter = PlatformLimiter(PlatformLimits(shared=(Spacing(0.2),), chat=()))
    first = await limiter.acquire(["chat:a"])
    first.done()
    waiting = asyncio.create_task(limiter.acquire(["chat:b"]))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    permit = await asyncio.wait_for(limiter.acquire(["chat:c"]), 1.0)
    permit.done()


def test_sweep_forgets_idle_chats() -> None:
    now = [0.0]
    limiter = PlatformLimiter(
        PlatformLimits(shared=(), chat=(Window(1, 1.0),)), clock=lambda: now[0]
    )
    for i in range(10):
        bucket = limiter.bucket(f"chat:{i}")
        bucket.finish(bucket.begin(0.0), 0.1)
    assert len(limiter) == 10
    now[0] = 100.0
    limiter.sweep()
    assert len(limiter) == 0
