"""`/healthz` and `/metrics` over HTTP (aiohttp), on the bot's own event loop.

`/healthz` answers 200 while every tracked loop is alive and the last store write succeeded,
else 503 with the reasons, so Docker's HEALTHCHECK and an orchestrator see what an operator
would. `/metrics` is the Prometheus text format.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops import metrics
from bot.ops.liveness import LIVENESS, Liveness

log = logging.getLogger(__name__)


class HealthServer:
    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, liveness: Liveness = LIVENESS
    ) -> None:
        self.host = host
        self.port = port
        self.liveness = liveness
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> int:
        """Listen; returns the port (useful when asked for port 0)."""
        runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("health endpoint listening", extra={"host": self.host, "port": self.port})
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        problems = self.liveness.problems()
        body = {
            "status": "unhealthy" if problems else "ok",
            "reasons": problems,
            "loops": self.liveness.loops(),
            "store_writable": self.liveness.store_writable,
        }
        return web.Response(
            status=503 if problems else 200,
            text=json.dumps(body, sort_keys=True) + "\n",
            content_type="application/json",
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        resp = web.Response(body=metrics.exposition())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp
