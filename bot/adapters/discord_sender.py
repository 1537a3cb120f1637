"""Outbound Discord: alerts, digests and their edits over discord.py's REST client.

Messages carry the outbox row's nonce with `enforce_nonce`, so Discord itself drops a resend
after a crash or a lost answer. (discord.py's `Messageable.send(nonce=...)` sets enforce_nonce
too, but needs a channel object from the gateway cache and discord.py's Embed/View types; the
worker has only ids and rendered JSON, so the routes are called through `client.http.request`.)

discord.py retries a 429 itself after sleeping `retry_after`; with
`max_ratelimit_timeout=30` (its minimum) longer waits come back to us as RateLimited, and a
trace hook notes whether each 429 was global so the worker pauses the right scope.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route

from bot.core.deliver.render import discord_alert, discord_reply
from bot.core.errors import (
    DeliveryError,
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RateLimited,
    TransientDeliveryError,
)
from bot.core.models import AlertMessage, Reply, SendResult, Target

log = logging.getLogger(__name__)

MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
CANNOT_MESSAGE_USER = 50007
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
MAX_RATELIMIT_TIMEOUT = 30.0  # the least discord.py accepts; longer 429s reach the worker


def channel_of(target: Target) -> str:
    """Threads are channels of their own on Discord."""
    return target.thread_id or target.chat_id


def api_base(url: str) -> str:
    url = url.rstrip("/")
    return url if re.search(r"/api/v\d+$", url) else f"{url}/api/v10"


def map_error(exc: BaseException, *, global_hint: bool = False) -> DeliveryError:
    """A discord.py (or aiohttp) error as what the delivery worker should do about it."""
    reason = str(exc)[:300] or type(exc).__name__
    if isinstance(exc, discord.RateLimited):
        scope = "global" if global_hint else "chat"
        return RateLimited(reason, float(exc.retry_after), scope=scope)
    if isinstance(exc, discord.Forbidden):
        kind = "blocked" if exc.code == CANNOT_MESSAGE_USER else "forbidden"
        return PermanentDeliveryError(reason, kind)
    if isinstance(exc, discord.NotFound):
        kind = "bad_request" if exc.code == UNKNOWN_MESSAGE else "not_found"
        return PermanentDeliveryError(reason, kind)
    if isinstance(exc, discord.DiscordServerError):
        return TransientDeliveryError(reason)
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:  # without Discord's Via header: a ban at the edge, all requests
            after = exc.response.headers.get("Retry-After") if exc.response else None
            try:
                wait = float(after) if after else 60.0
            except ValueError:
                wait = 60.0
            return RateLimited(reason, wait, scope="global")
        if exc.status == 400:
            return PermanentDeliveryError(reason, "bad_request")
        return TransientDeliveryError(reason)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransientDeliveryError(reason)  # never reached Discord
    if isinstance(exc, (TimeoutError, aiohttp.ClientError, OSError)):
        return DeliveryOutcomeUnknown(reason)
    return TransientDeliveryError(reason)


class DiscordAlertSender:
    """AlertSender over a logged-in discord.py HTTPClient."""

    platform = "discord"

    def __init__(
        self,
        http: HTTPClient,
        *,
        global_429s: dict[str, float] | None = None,
        closer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.http = http
        self._global_429s = global_429s if global_429s is not None else {}
        self._closer = closer

    async def close(self) -> None:
        if self._closer is not None:
            await self._closer()

    async def _call(self, route: Route, body: dict[str, Any]) -> Any:
        try:
            return await self.http.request(route, json=body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            hint = self._global_429s.pop(route.url, None) is not None
            raise map_error(exc, global_hint=hint) from exc

    async def _post(self, target: Target, body: dict[str, Any], nonce: str) -> str:
        body = {**body, "nonce": nonce[:25], "enforce_nonce": True}
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_of(target))
        data = await self._call(route, body)
        return str(data["id"])

    async def send_alert(self, target: Target, alert: AlertMessage, *, nonce: str) -> SendResult:
        return SendResult(await self._post(target, discord_alert(alert), nonce))

    async def edit_alert(self, target: Target, message_id: str, alert: AlertMessage) -> None:
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_of(target),
            message_id=message_id,
        )
        await self._call(route, discord_alert(alert))

    async def send_text(self, target: Target, reply: Reply, *, nonce: str) -> SendResult:
        first: str | None = None
        for i, body in enumerate(discord_reply(reply)):
            piece_nonce = nonce if i == 0 else f"{nonce[:21]}t{i:03d}"
            message_id = await self._post(target, body, piece_nonce)
            first = first or message_id
        return SendResult(first or "")


def _trace(global_429s: dict[str, float]) -> aiohttp.TraceConfig:
    """Note which answers were global 429s (discord.py raises without saying so)."""

    async def on_end(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        response = params.response
        if response.status != 429:
            return
        headers = response.headers
        is_global = headers.get("X-RateLimit-Global", "").lower() == "true" or (
            headers.get("X-RateLimit-Scope", "").lower() == "global"
        )
        after = headers.get("Retry-After")
        log.info(
            "discord answered 429",
            extra={"url": str(params.url), "global": is_global, "retry_after": after},
        )
        if is_global:
            global_429s[str(params.url)] = 1.0

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    return trace


async def open_discord_sender(token: str, *, api_base_url: str | None = None) -> DiscordAlertSender:
    """Log in with discord.py (REST only: no gateway) and return a ready sender."""
    if api_base_url:
        Route.BASE = api_base(api_base_url)
    global_429s: dict[str, float] = {}
    client = discord.Client(
        intents=discord.Intents.none(),
        max_ratelimit_timeout=MAX_RATELIMIT_TIMEOUT,
        http_trace=_trace(global_429s),
    )
    try:
        await client.login(token)
    except BaseException:
        await client.close()
        raise
    log.info("discord sender ready")
    return DiscordAlertSender(client.http, global_429s=global_429s, closer=client.close)
