"""The heartbeat row: proof that the store takes writes, and a note for `status` to read.

Every few seconds each running process writes its own small row: which loops are alive, which
adapters are connected, whether it holds the delivery lock. Whether that write succeeds is the
health endpoint's "store is writable" signal; the row lets `sovereign-watch status`, run from
another shell, say what the bot is doing without talking to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot import __version__
from bot.ops.liveness import LIVENESS, Liveness

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "heartbeat:"
ADAPTERS = ("telegram", "discord", "console")


def heartbeat_key() -> str:
    """This process's row: one per process, so two processes on a store do not overwrite."""
    return f"{HEARTBEAT_PREFIX}{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Heartbeat:
    pid: int
    host: str
    version: str
    at: datetime
    started: datetime
    every: float
    loops: dict[str, bool] = field(default_factory=dict)
    adapters: dict[str, str] = field(default_factory=dict)
    delivering: bool = False
    running: bool = True  # false in the last row a process writes as it stops

    def fresh(self, now: datetime) -> bool:
        """Written recently enough, and not on the way out: its process is most likely up."""
        return self.running and (now - self.at).total_seconds() <= max(3 * self.every, 30.0)

    def encode(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "host": self.host,
                "version": self.version,
                "at": self.at.isoformat(timespec="seconds"),
                "started": self.started.isoformat(timespec="seconds"),
                "every": self.every,
                "loops": self.loops,
                "adapters": self.adapters,
                "delivering": self.delivering,
                "running": self.running,
            },
            sort_keys=True,
        )

    @staticmethod
    def decode(raw: str | None) -> Heartbeat | None:
        """The row's content, or None when absent or unreadable (never raises)."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return Heartbeat(
                pid=int(data["pid"]),
                host=str(data["host"]),
                version=str(data["version"]),
                at=datetime.fromisoformat(data["at"]),
                started=datetime.fromisoformat(data["started"]),
                every=float(data["every"]),
                loops={str(k): bool(v) for k, v in dict(data.get("loops") or {}).items()},
                adapters={str(k): str(v) for k, v in dict(data.get("adapters") or {}).items()},
                delivering=bool(data.get("delivering")),
                running=bool(data.get("running", True)),
            )
        except (ValueError, KeyError, TypeError):
            return None


def adapter_states(liveness: Liveness) -> dict[str, str]:
    """connected / disconnected when the adapter reports it, else running / stopped."""
    loops = liveness.loops()
    reported = liveness.connected()
    states: dict[str, str] = {}
    for name in ADAPTERS:
        if name not in loops and name not in reported:
            continue
        alive = loops.get(name, True)
        if name in reported:
            states[name] = "connected" if reported[name] and alive else "disconnected"
        else:
            states[name] = "running" if alive else "stopped"
    return states


class HeartbeatWriter:
    """Writes the heartbeat row through `write(key, value)` and records whether it worked."""

    def __init__(
        self,
        write: Callable[[str, str], None],
        *,
        every: float = 15.0,
        liveness: Liveness = LIVENESS,
        delivering: Callable[[], bool] = lambda: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.write = write
        self.every = every
        self.liveness = liveness
        self.delivering = delivering
        self.clock = clock
        self.started = clock()
        self.host = socket.gethostname()

    def current(self, *, running: bool = True) -> Heartbeat:
        return Heartbeat(
            pid=os.getpid(),
            host=self.host,
            version=__version__,
            at=self.clock(),
            started=self.started,
            every=self.every,
            loops=self.liveness.loops(),
            adapters=adapter_states(self.liveness),
            delivering=self.delivering(),
            running=running,
        )

    def write_once(self, *, running: bool = True) -> bool:
        """One write; a failure marks the store unwritable until a later write succeeds."""
        try:
            self.write(heartbeat_key(), self.current(running=running).encode())
        except Exception as exc:  # disk full, read-only, locked: all mean "cannot write now"
            if self.liveness.store_writable:
                log.error("store write failed", extra={"reason": str(exc) or type(exc).__name__})
            self.liveness.store_failed(str(exc) or type(exc).__name__)
            return False
        if not self.liveness.store_writable:
            log.warning("store writable again")
        self.liveness.store_written()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.write_once()
            self.liveness.beat("heartbeat")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every)
