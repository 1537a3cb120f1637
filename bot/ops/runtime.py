"""Everything operational that runs beside the bot's loops, started and stopped as one.

`run` creates one `Operations`, starts it, tracks its own loops with it, and hands it the
delivery loop so that only the holder of the store's delivery lock sends anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import SovereignWatchError
from bot.ops import metrics
from bot.ops.health import HealthServer
from bot.ops.heartbeat import HeartbeatWriter
from bot.ops.liveness import LIVENESS, Liveness
from bot.ops.lock import DeliveryLock
from bot.ops.schedule import run_every
from bot.ops.stats import StoreStats

log = logging.getLogger(__name__)

DAY = 24 * 3600.0


@dataclass(frozen=True)
class OpsHooks:
    """What operations need from the store, as callables built by `bot/app.py`."""

    write_meta: Callable[[str, str], None]
    store_stats: Callable[[], StoreStats]
    prune: Callable[[], Awaitable[object]] | None = None


@dataclass(frozen=True)
class OpsConfig:
    db_path: Path | str
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    heartbeat_every: float = 15.0
    retention_every: float = DAY
    retention_first_delay: float = 600.0  # let start-up (and a first poll) finish first


class Operations:
    def __init__(
        self, hooks: OpsHooks, config: OpsConfig, *, liveness: Liveness = LIVENESS
    ) -> None:
        self.hooks = hooks
        self.config = config
        self.liveness = liveness
        self.lock = DeliveryLock(config.db_path)
        self.delivering = False
        self.server: HealthServer | None = None
        self.heartbeat = HeartbeatWriter(
            hooks.write_meta,
            every=config.heartbeat_every,
            liveness=liveness,
            delivering=lambda: self.delivering,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._names: set[str] = set()

    @property
    def port(self) -> int | None:
        return self.server.port if self.server is not None else None

    def track(
        self, name: str, task: asyncio.Task[None], *, max_silence: float | None = None
    ) -> None:
        """Count `task` among the loops `/healthz` requires alive."""
        self._names.add(name)
        self.liveness.track(name, task, max_silence=max_silence)

    async def start(self, stop: asyncio.Event) -> None:
        cfg = self.config
        metrics.watch_store(self.hooks.store_stats)
        metrics.watch_process(self.liveness.loops, lambda: self.liveness.store_writable)
        self.heartbeat.write_once()
        beat = asyncio.create_task(self.heartbeat.run(stop), name="heartbeat")
        self._tasks.append(beat)
        # A write may wait out the 30 s busy timeout; only much longer silence is a hang.
        self.track("heartbeat", beat, max_silence=3 * cfg.heartbeat_every + 60)
        if self.hooks.prune is not None:
            prune = asyncio.create_task(
                run_every(
                    "retention",
                    cfg.retention_every,
                    self.hooks.prune,
                    stop,
                    first_delay=cfg.retention_first_delay,
                    liveness=self.liveness,
                ),
                name="retention",
            )
            self._tasks.append(prune)
            self.track("retention", prune)
        if cfg.http_port is not None:
            server = HealthServer(host=cfg.http_host, port=cfg.http_port, liveness=self.liveness)
            try:
                await server.start()
            except OSError as exc:  # port taken, address not on this machine
                await server.stop()
                raise SovereignWatchError(
                    f"cannot serve /healthz on {cfg.http_host}:{cfg.http_port} "
                    f"(SW_HTTP_HOST, SW_HTTP_PORT): {exc.strerror or exc}"
                ) from None
            self.server = server

    async def deliver(
        self, run: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        """Run the delivery loop once this process holds the delivery lock, until `stop`."""
        if not await self.lock.wait(stop):
            return
        self.delivering = True
        self.heartbeat.write_once()  # `status` shows the new deliverer at once
        try:
            await run(stop)
        finally:
            self.delivering = False
            self.lock.release()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.server is not None:
            await self.server.stop()
        self.lock.release()
        self.heartbeat.write_once(running=False)  # `status` can say "stopped" at once
        for name in self._names:
            self.liveness.forget(name)
        self._names.clear()
        with contextlib.suppress(Exception):
            metrics.unwatch()
