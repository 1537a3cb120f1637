"""The delivery worker: sends what the outbox holds through each platform's AlertSender.

A row goes pending -> claimed (taken into memory) -> in_flight (committed just before the send)
-> sent, failed, or back with a delay. Each chat (Discord: each channel) is a lane that sends its
rows in order; lanes run side by side and share their platform's limiter, so a thousand chats
drain at the platform's overall rate while a chat that is paused, backing off or gone holds up
nobody else. Waits are scheduled, never slept inside a sender: a 429 pauses the chat's buckets
(or the platform's) and puts the row back with `next_attempt_at` set.

After a crash, rows left in flight are resent with the same nonce where the platform dedupes
by it (Discord); elsewhere (Telegram) they are flagged uncertain and sent at most once more.
Only one worker delivers per store: a lease in the store, taken over at once from a dead process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from bot.core.deliver.digest import build_digest, due_digests
from bot.core.deliver.quiet import quiet_until
from bot.core.deliver.ratelimit import (
    DISCORD_LIMITS,
    TELEGRAM_LIMITS,
    UNLIMITED,
    PlatformLimiter,
    PlatformLimits,
)
from bot.core.deliver.updates import AlertBuilder, outlets_shown
from bot.core.errors import (
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RateLimited,
    TargetMigrated,
    TransientDeliveryError,
)
from bot.core.models import AlertMessage, Reply, SendResult, Target
from bot.core.ports import AlertSender, DeliveryRow, EditRow, RecoveryCounts, StorePort

log = logging.getLogger(__name__)

PAUSE_KINDS = frozenset({"blocked", "kicked", "not_found", "forbidden"})
GROUP_CHAT_TYPES = frozenset({"group", "supergroup", "channel"})
LEASE_KEY_VERSION = 1
GLOBAL_429_CHATS = 3  # chat-scoped 429s from this many chats within the window...
GLOBAL_429_WINDOW = 1.0  # ...are taken as one for the whole bot


@dataclass(frozen=True)
class PlatformPolicy:
    """How a platform is paced and whether a resend with the same nonce is harmless."""

    limits: PlatformLimits
    idempotent: bool = False
    thread_is_channel: bool = False  # Discord threads are channels with limits of their own

    def lane(self, target: Target) -> str:
        if self.thread_is_channel and target.thread_id:
            return target.thread_id
        return target.chat_id

    @staticmethod
    def is_group(target: Target, chat_type: str | None) -> bool:
        if chat_type:
            return chat_type in GROUP_CHAT_TYPES
        return target.chat_id.startswith("-")  # Telegram: negative ids are groups and channels


DEFAULT_POLICIES: dict[str, PlatformPolicy] = {
    "telegram": PlatformPolicy(TELEGRAM_LIMITS, idempotent=False),
    "discord": PlatformPolicy(DISCORD_LIMITS, idempotent=True, thread_is_channel=True),
    "console": PlatformPolicy(UNLIMITED, idempotent=True),
}


def policy_for(platform: str) -> PlatformPolicy:
    return DEFAULT_POLICIES.get(platform, PlatformPolicy(UNLIMITED))


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 300.0
    max_attempts: int = 8  # transient failures of one row before it is given up
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    uncertain_retry_delay: float = 2.0
    edit_every: float = 600.0  # at most one "also reported by" edit per message per this
    edit_window: float = 48 * 3600.0  # alerts older than this are not edited any more
    batch: int = 500
    max_held: int = 5_000
    digest_every: float = 30.0
    edits_every: float = 10.0
    lease_ttl: float = 30.0
    stop_grace: float = 5.0

    @property
    def wake_every(self) -> float:
        """The outbox is looked at least this often, so work resumes promptly after a restart."""
        return max(0.02, min(1.0, self.poll_seconds / 10))


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    uncertain: int = 0
    edited: int = 0
    paused_targets: int = 0
    migrated: int = 0
    digests: int = 0
    recovered: RecoveryCounts = field(default_factory=RecoveryCounts)

    def as_dict(self) -> dict[str, int]:
        out = {k: v for k, v in vars(self).items() if isinstance(v, int)}
        out.update({f"recovered_{k}": v for k, v in vars(self.recovered).items()})
        return out


class DeliveryBusy(Exception):
    """Another live process holds the delivery lease of this store."""


@dataclass
class _RowJob:
    row: DeliveryRow


@dataclass
class _EditJob:
    edit: EditRow


_Job = _RowJob | _EditJob


@dataclass
class _Lane:
    key: tuple[str, str]
    jobs: deque[_Job] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    sending: bool = False


class _Gone(Exception):
    """The row cannot be rendered (its story or payload is gone): fail it, do not retry."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a killed child not yet reaped is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


class DeliveryWorker:
    def __init__(
        self,
        store: StorePort,
        senders: Mapping[str, AlertSender],
        *,
        policies: Mapping[str, PlatformPolicy] | None = None,
        config: WorkerConfig | None = None,
        country_name: Callable[[str], str] | None = None,
        wall: Callable[[], float] = time.time,
        now_utc: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.senders = dict(senders)
        given = dict(policies or {})
        self.policies = {p: given.get(p) or policy_for(p) for p in self.senders}
        self.limiters = {p: PlatformLimiter(pol.limits) for p, pol in self.policies.items()}
        self.config = config or WorkerConfig()
        self.country_name = country_name or (lambda code: code)
        self.wall = wall
        self.now_utc = now_utc
        self.stats = DeliveryStats()
        self.alerts = AlertBuilder(store.articles)
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._held: set[int] = set()
        self._editing: set[int] = set()
        self._stopping = False
        self._halt = asyncio.Event()
        self._wake = asyncio.Event()
        self._owner = uuid.uuid4().hex[:12]
        self._lease: str | None = None
        self._recovered = False
        self._recent_429: dict[str, deque[tuple[float, str]]] = {}

    # --- public -----------------------------------------------------------------------------
    def nudge(self) -> None:
        """Look at the outbox now (e.g. right after an ingest queued alerts in this process)."""
        self._wake.set()

    @property
    def busy(self) -> bool:
        return any(lane.task is not None and not lane.task.done() for lane in self._lanes.values())

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then finish the sends under way and release the rest."""
        warned = False
        while not stop.is_set() and not self._take_lease():
            if not warned:
                log.warning("another process is delivering from this store; waiting")
                warned = True
            await self._wait(stop, self.config.wake_every)
        if stop.is_set():
            return
        self._recover()
        last_lease = last_digest = last_edits = -1e18
        cfg = self.config
        try:
            while not stop.is_set():
                now = time.monotonic()
                try:
                    if now - last_lease >= cfg.lease_ttl / 3:
                        last_lease = now
                        if not self._take_lease():
                            log.error("lost the delivery lease to another process; not claiming")
                            await self._wait(stop, cfg.wake_every)
                            continue
                    if now - last_digest >= cfg.digest_every:
                        last_digest = now
                        self.schedule_digests()
                    if now - last_edits >= cfg.edits_every:
                        last_edits = now
                        self.queue_edits()
                    self._claim()
                except Exception:  # a busy store or a bug: log it and try again next round
                    log.exception("delivery loop iteration failed")
                await self._wait(stop, cfg.wake_every, self._wake)
                self._wake.clear()
        finally:
            await self._shutdown()

    async def drain_once(self, max_wait: float = 120.0) -> DeliveryStats:
        """Send everything queued now, including retries due within `max_wait` s, then stop."""
        if not self._take_lease():
            raise DeliveryBusy("another process is delivering from this store")
        deadline = time.monotonic() + max_wait
        try:
            self._recover()
            self.schedule_digests()
            self.queue_edits()
            while True:
                self._claim()
                if not self.busy:
                    due = self.store.outbox.next_due(list(self.senders))
                    left = deadline - time.monotonic()
                    if due is None or due > self.wall() + left:
                        break
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02 if self.busy else min(0.2, self.config.wake_every))
        finally:
            await self._shutdown()
        return self.stats

    # --- the store lease --------------------------------------------------------------------
    def _take_lease(self) -> bool:
        now = self.wall()
        current = self.store.outbox.read_lease()
        if current is not None and current != self._lease:
            try:
                held = json.loads(current)
                owner, pid = str(held["owner"]), int(held["pid"])
                expires, host = float(held["expires"]), str(held.get("host", ""))
            except (ValueError, KeyError, TypeError):
                owner, pid, expires, host = "", 0, 0.0, ""
            same_host = host == socket.gethostname()
            alive = expires > now and (not same_host or (pid != os.getpid() and _pid_alive(pid)))
            if owner != self._owner and alive:
                return False
        mine = json.dumps(
            {
                "v": LEASE_KEY_VERSION,
                "owner": self._owner,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "expires": now + self.config.lease_ttl,
            }
        )
        if self.store.outbox.swap_lease(current, mine):
            self._lease = mine
            return True
        return False

    def _drop_lease(self) -> None:
        if self._lease is not None:
            with contextlib.suppress(Exception):
                self.store.outbox.swap_lease(self._lease, None)
            self._lease = None

    # --- start-up, claiming, shutdown -------------------------------------------------------
    def _recover(self) -> None:
        if self._recovered:
            return
        self._recovered = True
        known = {**DEFAULT_POLICIES, **self.policies}
        counts = self.store.outbox.recover(p for p, pol in known.items() if pol.idempotent)
        self.stats.recovered = counts
        if counts.resent or counts.uncertain or counts.failed or counts.released:
            log.warning("recovered deliveries left by an earlier stop", extra=vars(counts))

    def _claim(self) -> int:
        total = 0
        cfg = self.config
        while not self._stopping:
            room = cfg.max_held - len(self._held)
            if room <= 0:
                break
            want = min(cfg.batch, room)
            rows = self.store.outbox.claim_due(self.wall(), list(self.senders), want)
            quiet = self._hold_quiet(rows)
            for row in rows:
                if row.id in quiet:
                    continue
                self._held.add(row.id)
                policy = self.policies[row.target.platform]
                self._enqueue((row.target.platform, policy.lane(row.target)), _RowJob(row))
            total += len(rows)
            if len(rows) < want:
                break
        return total

    def _hold_quiet(self, rows: list[DeliveryRow]) -> set[int]:
        """Put alerts claimed inside their quiet hours back, due when the hours end."""
        now = self.now_utc()
        due: list[tuple[int, float]] = []
        for row in rows:
            if row.kind != "alert" or not row.quiet_start:
                continue
            until = quiet_until(now, row.tz, row.quiet_start, row.quiet_end)
            if until is not None:
                due.append((row.id, self.wall() + (until - now).total_seconds()))
        if due:
            self.store.outbox.defer(due, "held for quiet hours")
        return {row_id for row_id, _ in due}

    def _enqueue(self, key: tuple[str, str], job: _Job) -> None:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key)
        lane.jobs.append(job)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._run_lane(lane))

    async def _shutdown(self) -> None:
        self._stopping = True
        self._halt.set()
        lanes = list(self._lanes.values())
        sending = [ln.task for ln in lanes if ln.sending and ln.task is not None]
        for lane in lanes:
            if lane.task is not None and not lane.sending:
                lane.task.cancel()
        if sending:
            await asyncio.wait(sending, timeout=self.config.stop_grace)
        tasks = [ln.task for ln in lanes if ln.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        left = [job.row.id for ln in lanes for job in ln.jobs if isinstance(job, _RowJob)]
        with contextlib.suppress(Exception):
            self.store.outbox.release(left)
        self._lanes.clear()
        self._held.clear()
        self._editing.clear()
        self._drop_lease()

    async def _wait(
        self, stop: asyncio.Event, seconds: float, also: asyncio.Event | None = None
    ) -> None:
        waiters = [asyncio.ensure_future(stop.wait())]
        if also is not None:
            waiters.append(asyncio.ensure_future(also.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _sleep(self, seconds: float) -> None:
        """A back-off wait inside one lane; cut short when the worker stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._halt.wait(), timeout=max(0.0, seconds))

    # --- lanes ------------------------------------------------------------------------------
    async def _run_lane(self, lane: _Lane) -> None:
        try:
            while lane.jobs and not self._stopping:
                job = lane.jobs[0]
                try:
                    keep = await self._attempt(lane, job)
                except asyncio.CancelledError:
                    raise
                except Exception:  # never lose the lane to a bug in one job
                    log.exception("delivery attempt crashed", extra={"lane": lane.key[1]})
                    keep = False
                    if isinstance(job, _RowJob):
                        self._settle_retry_later(job.row, "internal error", 60.0)
                if not keep and lane.jobs and lane.jobs[0] is job:
                    lane.jobs.popleft()
                    self._forget(job)
        finally:
            if not lane.jobs and self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]

    def _forget(self, job: _Job) -> None:
        if isinstance(job, _RowJob):
            self._held.discard(job.row.id)
        else:
            self._editing.discard(job.edit.id)

    def _drop_target_jobs(self, lane: _Lane, target_id: int) -> list[int]:
        """Take every job of one target out of its lane; the ids of the rows among them."""
        kept: deque[_Job] = deque()
        dropped: list[int] = []
        for job in lane.jobs:
            tid = job.row.target_id if isinstance(job, _RowJob) else job.edit.target_id
            if tid == target_id:
                self._forget(job)
                if isinstance(job, _RowJob):
                    dropped.append(job.row.id)
            else:
                kept.append(job)
        lane.jobs = kept
        return dropped

    async def _attempt(self, lane: _Lane, job: _Job) -> bool:
        """One try at the head job of a lane; True to try it again (after its wait)."""
        if isinstance(job, _EditJob):
            await self._edit(lane, job.edit)
            return False
        row = job.row
        platform = row.target.platform
        policy, limiter = self.policies[platform], self.limiters[platform]
        try:
            content = self._content(row)
        except _Gone as gone:
            self.store.outbox.settle_failed(row.id, str(gone))
            self.stats.failed += 1
            return False
        if content is None:  # every part already went out before a restart
            self.store.outbox.settle_sent(row.id, None, self.wall())
            return False
        keys = limiter.keys(lane.key[1], group=policy.is_group(row.target, row.chat_type))
        permit = await limiter.acquire(keys)
        lane.sending = True
        error: Exception | None = None
        try:
            self.store.outbox.mark_in_flight(row.id, self.wall())
            result = await self._send(row, content)
        except Exception as exc:  # sorted out below, once the permit is settled
            error = exc
        finally:
            permit.done()
            lane.sending = False
        if error is None:
            return self._succeeded(job, content, result)
        return await self._failed(lane, job, error, keys)

    async def _failed(self, lane: _Lane, job: _RowJob, error: Exception, keys: list[str]) -> bool:
        """Settle a failed send by what the platform said; True to retry it in this lane."""
        row = job.row
        platform = row.target.platform
        policy, limiter = self.policies[platform], self.limiters[platform]
        if isinstance(error, RateLimited):
            self.stats.rate_limited += 1
            if error.scope == "global" or self._looks_global(platform, lane.key[1]):
                limiter.pause_shared(error.retry_after)
            else:
                limiter.pause(keys, error.retry_after)
            self.store.outbox.settle_retry(
                row.id,
                self.wall() + error.retry_after,
                f"rate limited ({error.scope}): retry after {error.retry_after:g} s",
                state="claimed",
            )
            return True
        if isinstance(error, TargetMigrated):
            self._migrated(lane, row, error)
            return False
        if isinstance(error, PermanentDeliveryError):
            self._permanent(lane, row, error)
            return False
        if isinstance(error, DeliveryOutcomeUnknown) and not policy.idempotent:
            return await self._unknown(job, error.reason)
        if isinstance(error, TransientDeliveryError):
            return await self._transient(job, error.reason)
        log.error(
            "sender raised an unexpected error",
            extra={"platform": platform, "reason": repr(error)[:300]},
        )
        return await self._transient(job, repr(error)[:200])

    def _content(self, row: DeliveryRow) -> tuple[AlertMessage, int] | tuple[Reply, int] | None:
        """What to send next for a row: an alert, or the next part of a multi-part text."""
        if row.kind == "alert":
            if not row.story_id:
                raise _Gone("alert without a story")
            alert = self.alerts.alert(row.story_id, row.payload.get("article_id"))
            if alert is None:
                raise _Gone("the story is no longer stored")
            return alert, outlets_shown(alert)
        parts = row.payload.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _Gone(f"nothing to send for a {row.kind} row")
        done = int(row.payload.get("parts_done", 0))
        if done >= len(parts):
            return None
        title = str(row.payload.get("title") or "")
        if len(parts) > 1:
            title = f"{title} ({done + 1}/{len(parts)})".strip()
        return Reply(text=str(parts[done]), title=title or None), done

    async def _send(
        self, row: DeliveryRow, content: tuple[AlertMessage, int] | tuple[Reply, int]
    ) -> SendResult:
        sender = self.senders[row.target.platform]
        body, index = content
        if isinstance(body, AlertMessage):
            return await sender.send_alert(row.target, body, nonce=row.nonce)
        nonce = row.nonce if index == 0 else f"{row.nonce[:21]}p{index:03d}"
        return await sender.send_text(row.target, body, nonce=nonce)

    def _succeeded(
        self,
        job: _RowJob,
        content: tuple[AlertMessage, int] | tuple[Reply, int],
        result: SendResult,
    ) -> bool:
        row = job.row
        body, number = content
        if isinstance(body, Reply):
            parts = row.payload.get("parts") or []
            if number + 1 < len(parts):
                payload = {**row.payload, "parts_done": number + 1}
                payload.setdefault("first_message_id", result.message_id)
                self.store.outbox.save_progress(row.id, payload)
                job.row = replace(row, payload=payload)
                return True
            self.store.outbox.settle_sent(row.id, result.message_id, self.wall())
        else:
            self.store.outbox.settle_sent(row.id, result.message_id, self.wall(), number)
        self.stats.sent += 1
        return False

    # --- failures ---------------------------------------------------------------------------
    def _looks_global(self, platform: str, lane: str) -> bool:
        """Telegram does not say whether a 429 is for the chat or the bot: several chats
        refused within a second means the bot as a whole is over the limit."""
        now = time.monotonic()
        recent = self._recent_429.setdefault(platform, deque(maxlen=16))
        recent.append((now, lane))
        lanes = {key for t, key in recent if now - t <= GLOBAL_429_WINDOW}
        if len(lanes) >= GLOBAL_429_CHATS:
            log.warning("429s across chats: pausing the platform", extra={"platform": platform})
            recent.clear()
            return True
        return False

    def _backoff(self, attempts: int) -> float:
        cfg = self.config
        delay = min(cfg.backoff_cap, cfg.backoff_base * 2 ** max(0, attempts - 1))
        return delay * random.uniform(0.8, 1.2)

    def _settle_retry_later(self, row: DeliveryRow, reason: str, delay: float) -> None:
        self.store.outbox.settle_retry(
            row.id, self.wall() + delay, reason, state="pending", count_attempt=True
        )

    async def _transient(self, job: _RowJob, reason: str) -> bool:
        row = job.row
        attempts = row.attempts + 1
        if attempts >= self.config.max_attempts:
            self.store.outbox.settle_failed(
                row.id, f"gave up after {attempts} attempts: {reason}", uncertain=row.uncertain
            )
            self.stats.failed += 1
            log.warning("delivery given up", extra={"row": row.id, "reason": reason})
            return False
        delay = self._backoff(attempts)
        self.store.outbox.settle_retry(
            row.id, self.wall() + delay, reason, state="claimed", count_attempt=True
        )
        job.row = replace(row, attempts=attempts)
        self.stats.retried += 1
        await self._sleep(delay)
        return True

    async def _unknown(self, job: _RowJob, reason: str) -> bool:
        """No answer from a platform without idempotency keys: the message may be there.

        Send it once more, flagged uncertain; if that too goes unanswered, stop, so a chat
        never gets more than one extra copy.
        """
        row = job.row
        if row.uncertain:
            self.store.outbox.settle_failed(
                row.id,
                f"no answer twice ({reason}); not sent again to avoid duplicates",
                uncertain=True,
            )
            self.stats.failed += 1
            return False
        delay = self.config.uncertain_retry_delay
        self.store.outbox.settle_retry(
            row.id,
            self.wall() + delay,
            f"no answer ({reason}): may have been delivered; sending once more",
            state="claimed",
            uncertain=True,
        )
        job.row = replace(row, uncertain=True)
        self.stats.uncertain += 1
        await self._sleep(delay)
        return True

    def _permanent(self, lane: _Lane, row: DeliveryRow, exc: PermanentDeliveryError) -> None:
        reason = f"{exc.kind}: {exc.reason}"
        self.store.outbox.settle_failed(row.id, reason, uncertain=row.uncertain)
        self.stats.failed += 1
        if exc.kind not in PAUSE_KINDS:
            return
        self.store.subscriptions.pause_target(row.target_id, reason)
        self._drop_target_jobs(lane, row.target_id)
        self.stats.failed += self.store.outbox.fail_pending_for_target(
            row.target_id, f"target paused: {reason}"
        )
        self.stats.paused_targets += 1
        log.warning(
            "target paused after a permanent delivery error",
            extra={"target": row.target.key, "reason": reason},
        )

    def _migrated(self, lane: _Lane, row: DeliveryRow, exc: TargetMigrated) -> None:
        self.store.outbox.settle_retry(
            row.id, self.wall(), f"chat migrated to {exc.new_chat_id}", state="pending"
        )
        released = self._drop_target_jobs(lane, row.target_id)
        self.store.outbox.release(released)
        self.store.subscriptions.migrate_target(row.target_id, exc.new_chat_id)
        self.stats.migrated += 1
        log.info(
            "chat migrated; subscriptions moved",
            extra={"target": row.target.key, "new_chat_id": exc.new_chat_id},
        )
        self.nudge()

    # --- "also reported by" edits -----------------------------------------------------------
    def queue_edits(self) -> int:
        cfg = self.config
        now = self.wall()
        queued = 0
        for edit in self.store.outbox.edits_due(now, now - cfg.edit_window, 200):
            platform = edit.target.platform
            if edit.id in self._editing or platform not in self.senders:
                continue
            self._editing.add(edit.id)
            self._enqueue((platform, self.policies[platform].lane(edit.target)), _EditJob(edit))
            queued += 1
        return queued

    async def _edit(self, lane: _Lane, edit: EditRow) -> None:
        platform = edit.target.platform
        policy, limiter = self.policies[platform], self.limiters[platform]
        alert = self.alerts.alert(edit.story_id, edit.payload.get("article_id"), fresh=True)
        if alert is None:
            self.store.outbox.settle_edit(edit.id, edit.outlets, self.wall() + 1e9)
            return
        group = policy.is_group(edit.target, edit.chat_type)
        keys = limiter.keys(lane.key[1], group=group, edit=True)
        permit = await limiter.acquire(keys)
        lane.sending = True
        try:
            await self.senders[platform].edit_alert(edit.target, edit.message_id, alert)
        except RateLimited as exc:
            self.stats.rate_limited += 1
            permit.done()
            if exc.scope == "global":
                limiter.pause_shared(exc.retry_after)
            else:
                limiter.pause(keys, exc.retry_after)
            self.store.outbox.settle_edit(edit.id, None, self.wall() + exc.retry_after)
        except Exception as exc:  # the alert went out already; a failed edit is dropped
            log.info("edit failed; ignored", extra={"row": edit.id, "reason": repr(exc)[:200]})
            self.store.outbox.settle_edit(
                edit.id, edit.outlets, self.wall() + self.config.edit_every
            )
        else:
            self.store.outbox.settle_edit(
                edit.id,
                max(edit.outlets, outlets_shown(alert)),
                self.wall() + self.config.edit_every,
            )
            self.stats.edited += 1
        finally:
            permit.done()
            lane.sending = False

    # --- digests ----------------------------------------------------------------------------
    def schedule_digests(self) -> int:
        """Queue the digests whose time has come (once per target and local day)."""
        now = self.now_utc()
        due = due_digests(self.store.subscriptions.digest_subscriptions(), now)
        if not due:
            return 0
        stories = self.store.outbox.story_texts_since(min(d.since for d in due), limit=5_000)
        queued = 0
        for item in due:
            row = build_digest(item, stories, country_name=self.country_name)
            if self.store.outbox.queue_digest(item.target_id, row, now, item.subscription_ids):
                queued += 1
        self.stats.digests += queued
        if queued:
            self.nudge()
        return queued
