"""The operator's status report, shared by `sovereign-watch status` and the chat `/status`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot import __version__
from bot.core.ports import SourceRow
from bot.ops.heartbeat import Heartbeat

FEED_STATES = {
    "ok": "ok",
    "not_modified": "not modified",
    "empty": "empty",
    "timeout": "timeout",
    "not_a_feed": "not a feed",
    "disabled": "disabled",
    "error": "error",
}
HEALTHY = frozenset({"ok", "not modified", "never polled"})
CHAT_FEED_LINES = 12


def feed_state(source: SourceRow) -> str:
    """ok, not modified, empty, timeout, not a feed, disabled, error or never polled."""
    if not source.enabled:
        return "disabled"
    if source.last_status is None:
        return "never polled"
    return FEED_STATES.get(source.last_status, source.last_status.replace("_", " "))


@dataclass(frozen=True)
class StatusFacts:
    sources: Sequence[SourceRow]
    outbox_depth: int
    heartbeats: Sequence[Heartbeat]
    now: datetime
    outbox_oldest_age: float | None = None
    store_path: str | None = None
    last_backup: str | None = None


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 90 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _since(text: str | None, now: datetime) -> str:
    if not text:
        return "never"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return f"{when.isoformat(timespec='seconds')} ({ago((now - when).total_seconds())} ago)"


def _process_lines(beats: Sequence[Heartbeat], now: datetime) -> list[str]:
    """Every running process in detail; when none runs, how the latest one ended."""
    live = sorted((hb for hb in beats if hb.fresh(now)), key=lambda hb: hb.started)
    if not live:
        if not beats:
            return ["process: none has run with this store yet (no heartbeat recorded)"]
        hb = max(beats, key=lambda b: b.at)
        age = ago((now - hb.at).total_seconds())
        if not hb.running:
            return [
                f"process: none running; the last stopped {age} ago (pid {hb.pid} on {hb.host})"
            ]
        return [f"process: none running; the last heartbeat was {age} ago (pid {hb.pid})"]
    lines: list[str] = []
    for hb in live:
        up = ago((now - hb.started).total_seconds())
        age = ago((now - hb.at).total_seconds())
        role = "delivers" if hb.delivering else "not delivering"
        lines.append(f"process: pid {hb.pid} on {hb.host}, up {up}, heartbeat {age} ago, {role}")
        adapters = ", ".join(f"{name} {state}" for name, state in hb.adapters.items()) or "none"
        down = [name for name, alive in hb.loops.items() if not alive]
        lines.append(f"  adapters: {adapters}")
        lines.append("  loops: " + (f"stopped: {', '.join(down)}" if down else "all alive"))
    return lines


def status_lines(facts: StatusFacts, *, full: bool = True) -> list[str]:
    """Lines for an operator; `full` lists every feed, else only the ones in trouble."""
    now = facts.now
    lines = [f"Sovereign Watch {__version__}"]
    if facts.store_path:
        lines.append(f"store: {facts.store_path}")
    lines += _process_lines(facts.heartbeats, now)
    outbox = f"outbox: {facts.outbox_depth} queued"
    if facts.outbox_depth and facts.outbox_oldest_age is not None:
        outbox += f" (oldest waiting {ago(facts.outbox_oldest_age)})"
    lines.append(outbox)
    if facts.last_backup is not None:
        lines.append(f"last backup: {facts.last_backup}")
    states = [(feed_state(s), s) for s in facts.sources]
    tally = Counter(state for state, _ in states)
    summary = ", ".join(f"{n} {state}" for state, n in tally.most_common())
    lines.append(f"feeds: {len(states)}" + (f" ({summary})" if summary else ""))
    successes = [s.last_success_at for s in facts.sources if s.last_success_at]
    lines.append(f"last successful poll: {_since(max(successes) if successes else None, now)}")
    shown = states if full else [(st, s) for st, s in states if st not in HEALTHY]
    for state, s in shown[: None if full else CHAT_FEED_LINES]:
        line = f"  {state:13} {s.url}  last ok: {_since(s.last_success_at, now)}"
        if s.last_error and state not in ("ok", "not modified"):
            line += f"  ({s.last_error})"
        lines.append(line)
    if not full and len(shown) > CHAT_FEED_LINES:
        lines.append(f"  … and {len(shown) - CHAT_FEED_LINES} more (see `sovereign-watch status`)")
    return lines
