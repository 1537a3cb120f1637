"""Start an aiohttp app on 127.0.0.1 with a free port, and the lifecycle every fake shares."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web


async def serve_locally(
    app: web.Application, *, shutdown_timeout: float = 0.5, cancel_on_hangup: bool = False
) -> tuple[web.AppRunner, int]:
    """The started runner and its port. `cancel_on_hangup` ends a handler when the client
    leaves (long polls, slow drips), so a test's teardown never waits on one."""
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        handler_cancellation=cancel_on_hangup,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


class LocalServer:
    """What every fake shares: `async with Fake() as f:` runs `start()` and `stop()`, and
    `_close_runner()` tears the aiohttp runner down once, however often `stop` is called."""

    _runner: web.AppRunner | None = None

    async def start(self) -> object:
        raise NotImplementedError

    async def stop(self) -> None:
        await self._close_runner()

    async def _close_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
