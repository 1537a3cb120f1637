"""Pacing sends inside each platform's published limits, on monotonic time.

Two kinds of rule make a bucket:

- `Window(count, seconds)`: at most `count` sends in any span of `seconds`. A platform counts a
  request when it arrives, which is somewhere between our start and its answer, so the next
  send may start `seconds` after the *answer* to the send `count` places back. That is never
  early, whatever the network delay, and costs one round trip per window.
- `Spacing(seconds)`: a minimum gap between send starts, so a backlog leaves smoothly rather
  than in bursts that jitter could squeeze into one window.

A 429's `retry_after` pauses one chat's buckets or the platform's shared bucket. Nothing here
sleeps on a 429: callers ask for a permit and wait on their own schedule; waiters for the
shared bucket queue in order, so a thousand chats do not wake each other up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

Clock = Callable[[], float]

REL_MARGIN = 0.005  # a hair over each window, for clock granularity on either side
ABS_MARGIN = 0.003
# An unanswered send is taken to have reached the platform by this long after its start, so
# one hung request holds its bucket back for at most this (plus the window), not until the
# client's timeout.
PENDING_GRACE = 2.0


@dataclass(frozen=True)
class Window:
    count: int
    seconds: float


@dataclass(frozen=True)
class Spacing:
    seconds: float


Rule = Window | Spacing


def _scale(rules: tuple[Rule, ...], factor: float) -> tuple[Rule, ...]:
    return tuple(
        Window(r.count, r.seconds * factor)
        if isinstance(r, Window)
        else Spacing(r.seconds * factor)
        for r in rules
    )


@dataclass(frozen=True)
class PlatformLimits:
    """Rules for one platform: the bot as a whole, one chat, group chats, message edits."""

    shared: tuple[Rule, ...]
    chat: tuple[Rule, ...]
    group: tuple[Rule, ...] = ()
    edit: tuple[Rule, ...] | None = None  # None: an edit counts as a send in the chat's bucket

    def scaled(self, factor: float) -> PlatformLimits:
        """Every window times `factor`: benchmarks run a fake platform on a faster clock."""
        return replace(
            self,
            shared=_scale(self.shared, factor),
            chat=_scale(self.chat, factor),
            group=_scale(self.group, factor),
            edit=None if self.edit is None else _scale(self.edit, factor),
        )


# Spacing a little under window/count: smooth, yet able to make up for a late event loop
# (the window rule alone keeps the limit).
SMOOTH = 0.9

# Telegram Bot FAQ: about 30 messages/s overall, 1/s in one chat, 20/min in a group.
TELEGRAM_LIMITS = PlatformLimits(
    shared=(Window(30, 1.0), Spacing(SMOOTH / 30)),
    chat=(Window(1, 1.0),),
    group=(Window(20, 60.0),),
)
# Paid broadcasts lift the overall limit to 1,000 messages/s; chats keep theirs.
TELEGRAM_PAID_LIMITS = replace(TELEGRAM_LIMITS, shared=(Window(1000, 1.0), Spacing(SMOOTH / 1000)))
# Discord: 50 requests/s per bot; 5 messages per 5 s per channel (edits have their own route).
DISCORD_LIMITS = PlatformLimits(
    shared=(Window(50, 1.0), Spacing(SMOOTH / 50)),
    chat=(Window(5, 5.0),),
    edit=(Window(5, 5.0),),
)
UNLIMITED = PlatformLimits(shared=(), chat=())


class _Send:
    __slots__ = ("end", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.end: float | None = None


class Bucket:
    """One set of rules over one stream of sends (a chat, a group, a whole platform)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.windows = tuple(r for r in rules if isinstance(r, Window))
        self.spacing = max((r.seconds for r in rules if isinstance(r, Spacing)), default=0.0)
        self.horizon = max((w.seconds for w in self.windows), default=0.0)
        depth = max((w.count for w in self.windows), default=1)
        self._sends: deque[_Send] = deque(maxlen=depth)
        self._last_start = -math.inf
        self.paused_until = -math.inf
        self._changed = asyncio.Event()

    def ready_at(self, now: float) -> float | None:
        """When the next send may start; None while that depends on an unanswered send."""
        when = max(now, self.paused_until, self._last_start + self.spacing)
        for rule in self.windows:
            if len(self._sends) >= rule.count:
                earlier = self._sends[-rule.count]
                anchor = earlier.end
                if anchor is None:
                    if now < earlier.start + PENDING_GRACE:
                        return None
                    anchor = earlier.start + PENDING_GRACE
                when = max(when, anchor + rule.seconds * (1 + REL_MARGIN) + ABS_MARGIN)
        return when

    def begin(self, now: float) -> _Send:
        send = _Send(now)
        self._sends.append(send)
        self._last_start = now
        return send

    def finish(self, send: _Send, now: float) -> None:
        if send.end is None:
            send.end = now
            self._wake()

    def pause(self, until: float) -> None:
        if until > self.paused_until:
            self.paused_until = until
            self._wake()

    def idle(self, now: float) -> bool:
        """Nothing remembered here still matters: the bucket may be forgotten."""
        if self.paused_until > now or now - self._last_start < self.spacing:
            return False
        return all(
            (s.end if s.end is not None else s.start + PENDING_GRACE) + self.horizon * 2 < now
            for s in self._sends
        )

    def _wake(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_change(self, timeout: float) -> None:
        """Until a send of this bucket is answered or a pause changes, at most `timeout` s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


class Permit:
    """The right to one send; `done()` when its answer (or error) came back."""

    def __init__(self, parts: list[tuple[Bucket, _Send]], clock: Clock) -> None:
        self._parts = parts
        self._clock = clock

    def done(self) -> None:
        now = self._clock()
        for bucket, send in self._parts:
            bucket.finish(send, now)


def _earliest(times: Sequence[float | None]) -> float | None:
    if any(t is None for t in times):
        return None
    return max((t for t in times if t is not None), default=-math.inf)


class PlatformLimiter:
    """Permits for one platform: per-chat buckets first, then the shared bucket in turn."""

    SWEEP_EVERY = 2_000

    def __init__(self, limits: PlatformLimits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.shared = Bucket(limits.shared)
        self._gate = asyncio.Lock()  # fair (FIFO): waiters for the shared bucket keep order
        self._buckets: dict[str, Bucket] = {}
        self._issued = 0

    def keys(self, lane: str, *, group: bool = False, edit: bool = False) -> list[str]:
        """The per-chat buckets a send (or an edit) to `lane` counts against."""
        if edit and self.limits.edit is not None:
            return [f"edit:{lane}"]
        keys = [f"chat:{lane}"]
        if group and self.limits.group:
            keys.append(f"group:{lane}")
        return keys

    def bucket(self, key: str) -> Bucket:
        found = self._buckets.get(key)
        if found is None:
            kind = key.split(":", 1)[0]
            rules = {"chat": self.limits.chat, "group": self.limits.group}.get(kind)
            if rules is None:
                rules = self.limits.edit or ()
            found = self._buckets[key] = Bucket(rules)
        return found

    async def acquire(self, keys: Sequence[str]) -> Permit:
        """Wait (without holding anyone up) until a send to these buckets fits, then take it."""
        own = [self.bucket(k) for k in keys]
        await self._until_ready(own)
        async with self._gate:
            everything = [self.shared, *own]
            await self._until_ready(everything)
            now = self.clock()
            parts = [(b, b.begin(now)) for b in everything]
        self._issued += 1
        if self._issued % self.SWEEP_EVERY == 0:
            self.sweep()
        return Permit(parts, self.clock)

    async def _until_ready(self, buckets: Sequence[Bucket]) -> None:
        while True:
            now = self.clock()
            times = [b.ready_at(now) for b in buckets]
            when = _earliest(times)
            if when is not None and when <= now:
                return
            if when is None:
                blocking = next(b for b, t in zip(buckets, times, strict=True) if t is None)
                await blocking.wait_change(0.25)
            else:
                await asyncio.sleep(when - now)

    def pause(self, keys: Sequence[str], seconds: float) -> None:
        """A 429 for one chat: its buckets wait `seconds` from now."""
        until = self.clock() + max(0.0, seconds)
        for key in keys:
            self.bucket(key).pause(until)

    def pause_shared(self, seconds: float) -> None:
        """A 429 for the whole bot: every chat of this platform waits."""
        self.shared.pause(self.clock() + max(0.0, seconds))

    def sweep(self) -> None:
        now = self.clock()
        for key in [k for k, b in self._buckets.items() if b.idle(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
