"""Start an aiohttp app on 127.0.0.1 with a free port: what every fake platform needs."""

from __future__ import annotations

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
