"""Which loops are alive, whether the store takes writes, which adapters are connected.

Loops report in (`beat`), the health endpoint and the heartbeat row read the result. A loop
counts as dead when its task has ended, or when it promised to beat and has gone quiet for
longer than it said it might: a crashed task and a hung one look the same to an operator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Loop:
    task: asyncio.Task[object] | None
    max_silence: float | None
    last_beat: float


class Liveness:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._loops: dict[str, _Loop] = {}
        self._beats: dict[str, float] = {}
        self._store_error: str | None = None
        self._store_error_since: float | None = None
        self._connected: dict[str, bool] = {}

    # --- loops ------------------------------------------------------------------------------
    def track(
        self, name: str, task: asyncio.Task[object] | None, *, max_silence: float | None = None
    ) -> None:
        """Watch `task`; with `max_silence`, also expect `beat(name)` at least that often."""
        last = self._beats.get(name, self.clock())
        self._loops[name] = _Loop(task, max_silence, max(last, self.clock()))

    def forget(self, name: str) -> None:
        self._loops.pop(name, None)

    def beat(self, name: str) -> None:
        now = self.clock()
        self._beats[name] = now
        loop = self._loops.get(name)
        if loop is not None:
            loop.last_beat = now

    def loop_problem(self, name: str) -> str | None:
        loop = self._loops.get(name)
        if loop is None:
            return None
        task = loop.task
        if task is not None and task.done():
            if task.cancelled():
                return f"{name} loop stopped"
            exc = task.exception()
            if exc is not None:
                return f"{name} loop crashed: {type(exc).__name__}"
            return f"{name} loop stopped"
        if loop.max_silence is not None:
            quiet = self.clock() - loop.last_beat
            if quiet > loop.max_silence:
                return f"{name} loop silent for {quiet:.0f}s"
        return None

    def loops(self) -> dict[str, bool]:
        return {name: self.loop_problem(name) is None for name in self._loops}

    # --- the store --------------------------------------------------------------------------
    def store_written(self) -> None:
        self._store_error = None
        self._store_error_since = None

    def store_failed(self, reason: str) -> None:
        if self._store_error_since is None:
            self._store_error_since = self.clock()
        self._store_error = reason

    @property
    def store_writable(self) -> bool:
        return self._store_error is None

    def store_problem(self) -> str | None:
        if self._store_error is None:
            return None
        since = self.clock() - (self._store_error_since or self.clock())
        return f"store not writable for {since:.0f}s: {self._store_error}"

    # --- adapters ---------------------------------------------------------------------------
    def set_connected(self, adapter: str, connected: bool) -> None:
        """Adapters call this when their platform session comes up or drops."""
        self._connected[adapter] = connected

    def connected(self) -> dict[str, bool]:
        return dict(self._connected)

    # --- everything -------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Why the process is unhealthy; empty when every loop is alive and writes succeed."""
        found = [p for name in sorted(self._loops) if (p := self.loop_problem(name))]
        store = self.store_problem()
        if store:
            found.append(store)
        return found

    def clear(self) -> None:
        self._loops.clear()
        self._beats.clear()
        self._connected.clear()
        self.store_written()


LIVENESS = Liveness()
"""The process's own record: loops in the core beat here without being handed an object."""


def beat(name: str) -> None:
    LIVENESS.beat(name)


def set_connected(adapter: str, connected: bool) -> None:
    LIVENESS.set_connected(adapter, connected)
