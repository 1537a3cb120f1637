"""Run a job every so often until told to stop; a failing run is logged, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.ops.liveness import LIVENESS, Liveness

log = logging.getLogger(__name__)


async def run_every(
    name: str,
    every: float,
    job: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    first_delay: float = 0.0,
    liveness: Liveness = LIVENESS,
) -> None:
    """Call `job` after `first_delay`, then every `every` seconds, beating `name` each time."""
    delay = first_delay
    while not stop.is_set():
        liveness.beat(name)
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:  # the next run may well succeed; the loop itself must go on
            log.exception("scheduled job failed", extra={"job": name})
        liveness.beat(name)
        delay = every
