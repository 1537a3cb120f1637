"""A local stand-in for Discord's REST API and gateway, driven by the real discord.py client.

Why a fake platform instead of mocks: the adapter's delivery logic (rate limits, retries, nonce
dedupe, lost responses, interaction deadlines, resumes) only means something against the wire
behaviour discord.py actually sees. The server answers like Discord does where Discord publishes
the behaviour (status codes, JSON error codes, rate-limit headers, 3 s interaction deadline,
enforce_nonce dedupe, close codes) and records everything so tests assert on the server side.

Rate limits are sliding windows: at most `limit` accepted requests in any `per`-second span, per
bucket (route + major parameter) and globally per bot. That never accepts what a fixed window of
the same size would refuse, and it makes `max_in_window` over accepted requests a hard bound.
`X-RateLimit-Reset-After` tells when the window is completely empty again, which is what
discord.py's bucket model assumes.

Usage::

    async with FakeDiscord() as server:
        server.add_guild(GUILD, channels=[CHANNEL])
        with server.patched():
            client = discord.Client(intents=discord.Intents.default())
            task = asyncio.create_task(client.start(server.token))
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import secrets
import time
import zlib
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, NamedTuple

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.fakes.local_server import LocalServer, serve_locally

__all__ = [
    "ADMINISTRATOR",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_TOKEN",
    "EMBED_LINKS",
    "GLOBAL_LIMIT",
    "MESSAGE_EDIT_LIMIT",
    "MESSAGE_LIMIT",
    "MISSING_ACCESS",
    "MISSING_PERMISSIONS",
    "SEND_MESSAGES",
    "UNKNOWN_CHANNEL",
    "UNKNOWN_INTERACTION",
    "UNKNOWN_MESSAGE",
    "VIEW_CHANNEL",
    "FakeDiscord",
    "FakeInteraction",
    "RequestRecord",
    "permission_bits",
]

API_PREFIX = "/api/v10"
DEFAULT_TOKEN = "fake-bot-token.for-tests-only"
DISCORD_EPOCH_MS = 1_420_070_400_000

# Published limits: (requests, seconds).
MESSAGE_LIMIT = (5, 5.0)
MESSAGE_EDIT_LIMIT = (5, 5.0)
GLOBAL_LIMIT = (50, 1.0)
GATEWAY_SEND_LIMIT = (120, 60.0)
DEFAULT_ROUTE_LIMIT = GLOBAL_LIMIT  # routes without a published limit: only the global one binds

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_NONCE = 25
INTERACTION_ACK_S = 3.0
INTERACTION_TOKEN_S = 15 * 60.0

# Error bodies Discord sends (JSON error codes from the public docs).
MISSING_ACCESS = {"code": 50001, "message": "Missing Access"}
MISSING_PERMISSIONS = {"code": 50013, "message": "Missing Permissions"}
UNKNOWN_CHANNEL = {"code": 10003, "message": "Unknown Channel"}
UNKNOWN_MESSAGE = {"code": 10008, "message": "Unknown Message"}
UNKNOWN_WEBHOOK = {"code": 10015, "message": "Unknown Webhook"}
UNKNOWN_APPLICATION = {"code": 10002, "message": "Unknown Application"}
UNKNOWN_INTERACTION = {"code": 10062, "message": "Unknown interaction"}
ALREADY_ACKNOWLEDGED = {"code": 40060, "message": "Interaction has already been acknowledged."}
EMPTY_MESSAGE = {"code": 50006, "message": "Cannot send an empty message"}
UNAUTHORIZED = {"code": 0, "message": "401: Unauthorized"}

# Permission bits used by the fake's checks.
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1
DEFAULT_BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
DEFAULT_EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | USE_APPLICATION_COMMANDS
)

# Gateway intents that the developer portal must switch on.
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Gateway opcodes and close codes.
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE = 0, 1, 2, 3
OP_VOICE, OP_RESUME, OP_RECONNECT, OP_REQUEST_MEMBERS = 4, 6, 7, 8
OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 9, 10, 11
CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTH_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SEQ = 4007
CLOSE_RATE_LIMITED = 4008
CLOSE_SESSION_TIMED_OUT = 4009
CLOSE_INVALID_SHARD = 4010
CLOSE_DISALLOWED_INTENTS = 4014

_MAJOR_PARAMS = ("channel_id", "guild_id", "webhook_id", "webhook_token", "interaction_id")
_TOKEN_ROUTES = (API_PREFIX + "/interactions/", API_PREFIX + "/webhooks/")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")

Predicate = Callable[["RequestRecord"], bool]
_DROPPED = web.RequestKey("dropped", bool)
Json = dict[str, Any]


def permission_bits(*names: str) -> int:
    """OR together permission flags by discord.py's names, e.g. ("send_messages",)."""
    return discord.Permissions(**dict.fromkeys(names, True)).value


class RequestRecord(NamedTuple):
    """One REST request as the server saw it; status 0 means no answer was sent."""

    t: float
    method: str
    path: str
    status: int


class _ApiError(Exception):
    """Raised by handlers to answer with Discord's JSON error shape."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def _form_error(field_name: str, code: str, message: str) -> _ApiError:
    body = {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {field_name: {"_errors": [{"code": code, "message": message}]}},
    }
    return _ApiError(400, body)


def _json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """discord.py only parses bodies whose Content-Type is exactly application/json."""
    out = {"Content-Type": "application/json", "Via": "1.1 google"}
    out.update(headers or {})
    if status == 204:
        out.pop("Content-Type")
        return web.Response(status=204, headers=out)
    return web.Response(status=status, body=json.dumps(body).encode(), headers=out)


def _iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.isoformat(timespec="microseconds")


class _Snowflakes:
    """Time-based ids so discord.py's created_at values look sane."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


class _Window:
    """Sliding-window limiter: at most `limit` hits in any span of `per` seconds."""

    def __init__(self, limit: int, per: float) -> None:
        self.limit = limit
        self.per = per
        self.hits: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self.hits and self.hits[0] <= now - self.per:
            self.hits.popleft()

    def retry_after(self, now: float) -> float:
        self._trim(now)
        if len(self.hits) < self.limit:
            return 0.0
        return self.hits[-self.limit] + self.per - now

    def hit(self, now: float) -> None:
        self.hits.append(now)

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(0, self.limit - len(self.hits))

    def reset_after(self, now: float) -> float:
        self._trim(now)
        return self.hits[-1] + self.per - now if self.hits else 0.0


@dataclass
class _Injection:
    pattern: re.Pattern[str]
    method: str | None
    remaining: int
    status: int = 0
    body: Json | None = None
    retry_after: float = 0.0
    is_global: bool = False
    hang_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0 or (self.method and self.method.upper() != method):
            return False
        return self.pattern.search(path) is not None


@dataclass
class _Guild:
    id: int
    name: str
    owner_id: int
    joined_at: str
    roles: dict[int, Json] = field(default_factory=dict)
    channels: dict[int, Json] = field(default_factory=dict)
    members: dict[int, Json] = field(default_factory=dict)
    left: bool = False


@dataclass
class FakeInteraction:
    """Server-side state of one interaction token (deadline, acknowledgement, messages)."""

    id: int
    token: str
    channel_id: int
    guild_id: int | None
    created: float
    ack_type: int | None = None
    original: Json | None = None
    callbacks: list[Json] = field(default_factory=list)
    followups: list[Json] = field(default_factory=list)


class _Connection:
    """One gateway websocket; sends are serialised so sequence order survives."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.session: _Session | None = None
        self.cursor = 0
        self.server_closed = False
        self.limiter = _Window(*GATEWAY_SEND_LIMIT)
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None

    async def write(self, payload: Json) -> bool:
        if self.ws.closed:
            return False
        text = json.dumps(payload, separators=(",", ":"))
        try:
            if self._zlib is None:
                await self.ws.send_str(text)
            else:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def send(self, payload: Json) -> bool:
        async with self.lock:
            return await self.write(payload)

    async def close(self, code: int) -> None:
        self.server_closed = True
        await self.ws.close(code=code)


@dataclass
class _Session:
    id: str
    token: str
    intents: int
    shard: tuple[int, int]
    history: list[Json] = field(default_factory=list)
    conn: _Connection | None = None

    def owns_guild(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard[0] == 0
        return (guild_id >> 22) % self.shard[1] == self.shard[0]


def _options_payload(options: Mapping[str, Any] | Iterable[Json] | None) -> list[Json]:
    if options is None:
        return []
    if not isinstance(options, Mapping):
        return [dict(o) for o in options]
    out = []
    for name, value in options.items():
        if isinstance(value, bool):
            kind = 5
        elif isinstance(value, int):
            kind = 4
        elif isinstance(value, float):
            kind = 10
        else:
            kind = 3
        out.append({"name": name, "type": kind, "value": value})
    return out


def _embed_error(embeds: list[Json]) -> _ApiError | None:
    if len(embeds) > MAX_EMBEDS:
        return _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    limits = {"title": 256, "description": 4096}
    for embed in embeds:
        for key, limit in limits.items():
            size = len(embed.get(key) or "")
            if size > limit:
                return _form_error(
                    f"embeds.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
            total += size
        fields = embed.get("fields") or []
        if len(fields) > 25:
            return _form_error(
                "embeds.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for item in fields:
            if len(item.get("name") or "") > 256 or len(item.get("value") or "") > 1024:
                return _form_error("embeds.fields", "BASE_TYPE_MAX_LENGTH", "Field too long.")
            total += len(item.get("name") or "") + len(item.get("value") or "")
        total += len((embed.get("footer") or {}).get("text") or "")
        total += len((embed.get("author") or {}).get("name") or "")
    if total > MAX_EMBED_TOTAL:
        return _form_error(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    return None


def _message_error(payload: Json, *, require_body: bool = True) -> _ApiError | None:
    """The checks Discord applies to a message body before creating or editing it."""
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        return _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    error = _embed_error(payload.get("embeds") or [])
    if error is not None:
        return error
    nonce = payload.get("nonce")
    if nonce is not None and len(str(nonce)) > MAX_NONCE:
        return _form_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    mentions = payload.get("allowed_mentions")
    if mentions:
        parse = mentions.get("parse") or []
        if not set(parse) <= {"users", "roles", "everyone"}:
            return _form_error("allowed_mentions.parse", "ENUM_TYPE_COERCE", "Not a valid value.")
        for kind in ("users", "roles"):
            if kind in parse and mentions.get(kind):
                return _form_error(
                    "allowed_mentions",
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
    has_body = any(payload.get(k) for k in ("content", "embeds", "components", "attachments"))
    has_body = has_body or bool(payload.get("sticker_ids") or payload.get("poll"))
    if require_body and not has_body:
        return _ApiError(400, EMPTY_MESSAGE)
    return None


def _pings(content: str, allowed: Json | None, author_can_ping_everyone: bool) -> Json:
    """Who a message really notifies, after allowed_mentions filtering."""
    users = [int(u) for u in _USER_MENTION.findall(content)]
    roles = [int(r) for r in _ROLE_MENTION.findall(content)]
    everyone = ("@everyone" in content or "@here" in content) and author_can_ping_everyone
    if allowed is not None:
        parse = allowed.get("parse") or []
        allowed_users = {int(u) for u in allowed.get("users") or []}
        allowed_roles = {int(r) for r in allowed.get("roles") or []}
        users = [u for u in users if "users" in parse or u in allowed_users]
        roles = [r for r in roles if "roles" in parse or r in allowed_roles]
        everyone = everyone and "everyone" in parse
    return {"users": sorted(set(users)), "roles": sorted(set(roles)), "everyone": everyone}


def _command_error(commands: list[Json]) -> _ApiError | None:
    seen: set[tuple[str, int]] = set()
    for index, command in enumerate(commands):
        kind = int(command.get("type", 1))
        name = str(command.get("name", ""))
        key = (name, kind)
        if key in seen:
            return _form_error(
                f"{index}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            )
        seen.add(key)
        if kind == 1:
            error = _chat_input_error(f"{index}", command)
            if error is not None:
                return error
    return None


def _chat_input_error(where: str, item: Json) -> _ApiError | None:
    name = str(item.get("name", ""))
    if not _COMMAND_NAME.match(name) or name != name.lower():
        return _form_error(
            f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        )
    if not 1 <= len(str(item.get("description", ""))) <= 100:
        return _form_error(
            f"{where}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    options = item.get("options") or []
    if len(options) > 25:
        return _form_error(
            f"{where}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
        )
    seen_optional = False
    for number, option in enumerate(options):
        if int(option.get("type", 3)) in (1, 2):
            error = _chat_input_error(f"{where}.options.{number}", option)
        else:
            error = _chat_input_error(f"{where}.options.{number}", {**option, "options": []})
            if len(option.get("choices") or []) > 25:
                error = _form_error(
                    f"{where}.options.{number}.choices", "BASE_TYPE_MAX_LENGTH", "Too many."
                )
            if option.get("required") and seen_optional:
                error = _form_error(
                    f"{where}.options.{number}",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
            seen_optional = seen_optional or not option.get("required")
        if error is not None:
            return error
    return None


class FakeDiscord(LocalServer):
    """Discord's REST API (`/api/v10`) and gateway (`/`) on 127.0.0.1, for the real discord.py."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int | None = None,
        bot_name: str = "sovereign-watch",
        heartbeat_interval_ms: int = 41_250,
        message_limit: tuple[int, float] = MESSAGE_LIMIT,
        edit_limit: tuple[int, float] = MESSAGE_EDIT_LIMIT,
        global_limit: tuple[int, float] = GLOBAL_LIMIT,
        nonce_ttl_s: float = 300.0,
        interaction_ack_s: float = INTERACTION_ACK_S,
        allowed_intents: int | None = None,
        echo_messages: bool = True,
    ) -> None:
        self.token = token
        self._ids = _Snowflakes()
        self.bot_id = bot_id or self._ids.next()
        self.application_id = self.bot_id
        self.bot_name = bot_name
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.nonce_ttl_s = nonce_ttl_s
        self.interaction_ack_s = interaction_ack_s
        self.allowed_intents = allowed_intents
        self.echo_messages = echo_messages
        self._route_limits: dict[tuple[str, str], tuple[int, float]] = {
            ("POST", "/channels/{channel_id}/messages"): message_limit,
            ("PATCH", "/channels/{channel_id}/messages/{message_id}"): edit_limit,
        }
        self._global_limit = global_limit
        self._global = _Window(*global_limit)
        self._buckets: dict[str, _Window] = {}

        # Recorded traffic and state, for assertions.
        self.log: list[RequestRecord] = []
        self.rejected = 0
        self.messages: defaultdict[int, list[Json]] = defaultdict(list)
        self.users: dict[int, Json] = {}
        self.guilds: dict[int, _Guild] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.global_commands: list[Json] = []
        self.guild_commands: defaultdict[int, list[Json]] = defaultdict(list)
        self.global_command_writes = 0
        self.guild_command_writes: defaultdict[int, int] = defaultdict(int)
        self.nonce_hits = 0
        self.identify_count = 0
        self.resume_count = 0
        self.invalid_resume_count = 0
        self.heartbeat_count = 0
        self.presence_updates: list[Json] = []
        self.identify_payloads: list[Json] = []
        self.gateway_connects: list[dict[str, str]] = []

        self._nonces: dict[tuple[int, str], tuple[float, Json]] = {}
        self._message_index: dict[int, Json] = {}
        self._known_message_ids: set[int] = set()
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._fail: list[_Injection] = []
        self._storms: list[_Injection] = []
        self._drops: list[_Injection] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._saved_patch: tuple[str, yarl.URL] | None = None
        self.users[self.bot_id] = self._bot_user()

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        self._add_routes(app.router)
        self._runner, self._port = await serve_locally(app, shutdown_timeout=1.0)

    async def stop(self) -> None:
        self.unpatch_client()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(1001), timeout=1.0)
        await self._close_runner()

    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_base(self) -> str:
        return f"http://127.0.0.1:{self._port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/"

    def patch_client(self) -> None:
        """Point discord.py's REST base and default gateway at this server (undo: unpatch)."""
        if self._saved_patch is None:
            self._saved_patch = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            )
        discord.http.Route.BASE = self.rest_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def unpatch_client(self) -> None:
        if self._saved_patch is None:
            return
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
            self._saved_patch
        )
        self._saved_patch = None

    @contextlib.contextmanager
    def patched(self) -> Iterator[FakeDiscord]:
        self.patch_client()
        try:
            yield self
        finally:
            self.unpatch_client()

    # ----------------------------------------------------------------- world model

    def add_user(self, user_id: int, username: str | None = None, *, bot: bool = False) -> Json:
        user = {
            "id": str(user_id),
            "username": username or f"user{user_id % 100_000}",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }
        self.users[user_id] = user
        return user

    def _user(self, user_id: int) -> Json:
        return self.users.get(user_id) or self.add_user(user_id)

    def _bot_user(self) -> Json:
        return {
            "id": str(self.bot_id),
            "username": self.bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
            "email": None,
            "locale": "en-US",
        }

    def add_guild(
        self,
        guild_id: int,
        channels: Iterable[int | Mapping[str, Any]] = (),
        roles: Iterable[Mapping[str, Any]] = (),
        owner_id: int | None = None,
        *,
        name: str | None = None,
        members: Iterable[int | Mapping[str, Any]] = (),
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
    ) -> Json:
        """Add a guild the bot is in; returns its GUILD_CREATE payload.

        Channels are ids (text channels) or partial channel dicts (id required; may carry
        `permission_overwrites` with string allow/deny bits). A guild added after the client
        connected is announced with `await server.dispatch("GUILD_CREATE", payload)`.
        """
        owner = owner_id or self._ids.next()
        guild = _Guild(
            id=guild_id, name=name or f"guild-{guild_id % 10_000}", owner_id=owner, joined_at=_iso()
        )
        guild.roles[guild_id] = self._role(guild_id, "@everyone", everyone_permissions, 0)
        bot_role = guild_id + 1
        guild.roles[bot_role] = self._role(bot_role, self.bot_name, bot_permissions, 1)
        guild.roles[bot_role]["managed"] = True
        guild.roles[bot_role]["tags"] = {"bot_id": str(self.bot_id)}
        for position, role in enumerate(roles, start=2):
            rid = int(role["id"])
            base = self._role(rid, f"role-{rid % 10_000}", 0, position)
            guild.roles[rid] = {**base, **role, "id": str(rid)}
        channel_specs = list(channels) or [guild_id + 2]
        for position, spec in enumerate(channel_specs):
            data = {"id": spec} if isinstance(spec, int) else dict(spec)
            cid = int(data["id"])
            guild.channels[cid] = {
                "id": str(cid),
                "type": 0,
                "guild_id": str(guild_id),
                "name": f"channel-{cid % 10_000}",
                "position": position,
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
                **{k: v for k, v in data.items() if k != "id"},
            }
        guild.members[self.bot_id] = self._member(self.bot_id, [bot_role])
        for member in [owner, *members]:
            info: Json = {"id": member} if isinstance(member, int) else dict(member)
            uid = int(info["id"])
            guild.members[uid] = self._member(uid, [int(r) for r in info.get("roles", [])])
        self.guilds[guild_id] = guild
        return self.guild_payload(guild_id)

    @staticmethod
    def _role(role_id: int, name: str, permissions: int, position: int) -> Json:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _member(self, user_id: int, roles: list[int]) -> Json:
        return {
            "user": self._user(user_id) if user_id != self.bot_id else self._bot_user(),
            "roles": [str(r) for r in roles],
            "joined_at": _iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "communication_disabled_until": None,
        }

    def guild_payload(self, guild_id: int) -> Json:
        guild = self.guilds[guild_id]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "owner_id": str(guild.owner_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "afk_timeout": 300,
            "afk_channel_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "application_id": None,
            "vanity_url_code": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "roles": list(guild.roles.values()),
            "channels": [
                {k: v for k, v in c.items() if k != "guild_id"} for c in guild.channels.values()
            ],
            "members": list(guild.members.values()),
            "threads": [],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "premium_progress_bar_enabled": False,
        }

    async def remove_guild(self, guild_id: int) -> None:
        """The bot is kicked: GUILD_DELETE goes out and its channels answer Missing Access."""
        await self.dispatch("GUILD_DELETE", {"id": str(guild_id)})

    def channel(self, channel_id: int) -> Json:
        """The stored channel dict; edit it (e.g. overwrites), then dispatch CHANNEL_UPDATE."""
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        raise KeyError(channel_id)

    def _find_channel(self, channel_id: int) -> tuple[_Guild, Json]:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                if guild.left:
                    raise _ApiError(403, MISSING_ACCESS)
                return guild, guild.channels[channel_id]
        raise _ApiError(404, UNKNOWN_CHANNEL)

    def permissions_in(self, channel_id: int, user_id: int | None = None) -> int:
        """Channel permissions of a member (default: the bot), with overwrites applied."""
        guild, channel = self._find_channel(channel_id)
        uid = self.bot_id if user_id is None else user_id
        if uid == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(uid) or self._member(uid, [])
        role_ids = {int(r) for r in member["roles"]}
        perms = int(guild.roles[guild.id]["permissions"])
        for rid in role_ids:
            if rid in guild.roles:
                perms |= int(guild.roles[rid]["permissions"])
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites") or []}
        if guild.id in overwrites:
            perms = (perms & ~int(overwrites[guild.id]["deny"])) | int(
                overwrites[guild.id]["allow"]
            )
        allow = deny = 0
        for rid in role_ids:
            if rid in overwrites and int(overwrites[rid].get("type", 0)) == 0:
                allow |= int(overwrites[rid]["allow"])
                deny |= int(overwrites[rid]["deny"])
        perms = (perms & ~deny) | allow
        if uid in overwrites and int(overwrites[uid].get("type", 1)) == 1:
            perms = (perms & ~int(overwrites[uid]["deny"])) | int(overwrites[uid]["allow"])
        return perms

    # ----------------------------------------------------------------- test controls

    def fail_next(
        self,
        path_pattern: str,
        status: int,
        n: int = 1,
        body: Json | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next n matching requests (regex searched in the path after /api/v10).

        Without a body, 403 answers Missing Permissions and other codes Discord's generic
        `{"code": 0, "message": "<status>: <reason>"}`.
        """
        generic = {"code": 0, "message": f"{status}: {_reason(status)}"}
        default = MISSING_PERMISSIONS if status == 403 else generic
        self._fail.append(
            _Injection(re.compile(path_pattern), method, n, status=status, body=body or default)
        )

    def drop_response_next(
        self, path_pattern: str, n: int = 1, *, method: str | None = None, hang_s: float = 0.0
    ) -> None:
        """Carry out the next n matching requests, then close the connection unanswered."""
        self._drops.append(_Injection(re.compile(path_pattern), method, n, hang_s=hang_s))

    def storm_429(
        self,
        path_pattern: str,
        retry_after: float,
        n: int,
        global_: bool = False,
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next n matching requests with a 429 carrying `retry_after`."""
        self._storms.append(
            _Injection(
                re.compile(path_pattern), method, n, retry_after=retry_after, is_global=global_
            )
        )

    async def dispatch(self, event: str, data: Json) -> None:
        """Push a gateway event to every live session (buffered for resume while disconnected)."""
        if event == "INTERACTION_CREATE":
            self._register_interaction(data)
        elif event == "MESSAGE_CREATE":
            self._known_message_ids.add(int(data["id"]))
        elif event == "GUILD_DELETE" and not data.get("unavailable"):
            guild = self.guilds.get(int(data["id"]))
            if guild is not None:
                guild.left = True
        guild_id = _event_guild_id(event, data)
        for session in list(self._sessions.values()):
            if session.owns_guild(guild_id):
                await self._emit(session, event, self._shape(session, event, data))

    async def disconnect(self, resumable: bool = True) -> None:
        """Close every gateway socket; resumable uses 4000, otherwise the session is dropped."""
        for session in list(self._sessions.values()):
            conn = session.conn
            if not resumable:
                self._sessions.pop(session.id, None)
            if conn is not None:
                session.conn = None
                await conn.close(CLOSE_UNKNOWN_ERROR if resumable else CLOSE_SESSION_TIMED_OUT)

    async def send_reconnect(self) -> None:
        """Op 7: ask clients to reconnect and resume, as Discord does before maintenance."""
        for conn in list(self._connections):
            await conn.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01
    ) -> None:
        """Poll a condition on server state; raises TimeoutError if it never holds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(interval)

    def slash_command_payload(
        self,
        name: str,
        options: Mapping[str, Any] | Iterable[Json] | None,
        channel_id: int,
        guild_id: int | None,
        user_id: int,
        permissions: str = "8",
        *,
        command_guild_id: int | None = None,
        resolved: Json | None = None,
        locale: str = "en-US",
    ) -> Json:
        """An INTERACTION_CREATE (type 2, chat input) as Discord would send it."""
        scope = (
            self.guild_commands.get(command_guild_id, [])
            if command_guild_id
            else self.global_commands
        )
        command_id = next((c["id"] for c in scope if c["name"] == name), str(self._ids.next()))
        data: Json = {
            "id": command_id,
            "name": name,
            "type": 1,
            "options": _options_payload(options),
        }
        if command_guild_id is not None:
            data["guild_id"] = str(command_guild_id)
        if resolved is not None:
            data["resolved"] = resolved
        payload: Json = {
            "id": str(self._ids.next()),
            "application_id": str(self.application_id),
            "type": 2,
            "token": "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
            "version": 1,
            "data": data,
            "channel_id": str(channel_id),
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild_id is None:
            payload["user"] = self._user(user_id)
            payload["channel"] = {"id": str(channel_id), "type": 1}
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": str(user_id)}
            payload["app_permissions"] = str(ALL_PERMISSIONS)
            return payload
        guild = self.guilds.get(guild_id)
        known = guild.members.get(user_id) if guild else None
        member = dict(known or self._member(user_id, []))
        member["permissions"] = permissions
        channel = dict(self.channel(channel_id)) if guild else {"id": str(channel_id), "type": 0}
        channel["permissions"] = permissions
        payload.update(
            guild_id=str(guild_id),
            guild_locale="en-US",
            guild={"id": str(guild_id), "locale": "en-US", "features": []},
            member=member,
            channel=channel,
            context=0,
            authorizing_integration_owners={"0": str(guild_id)},
            app_permissions=str(self.permissions_in(channel_id) if guild else 0),
        )
        return payload

    def message_payload(
        self, channel_id: int, content: str, author_id: int, *, guild_id: int | None = None
    ) -> Json:
        """A MESSAGE_CREATE from a user, with mentions filled in from the content."""
        if guild_id is None:
            with contextlib.suppress(KeyError):
                guild_id = int(self.channel(channel_id)["guild_id"])
        payload: Json = {
            "id": str(self._ids.next()),
            "channel_id": str(channel_id),
            "author": self._user(author_id),
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content,
            "mentions": [self._user(int(u)) for u in _USER_MENTION.findall(content)],
            "mention_roles": _ROLE_MENTION.findall(content),
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            guild = self.guilds.get(guild_id)
            member = guild.members.get(author_id) if guild else None
            if member is not None:
                payload["member"] = {k: v for k, v in member.items() if k != "user"}
        return payload

    # ----------------------------------------------------------------- measurements

    def max_in_window(self, predicate: Predicate, window_s: float) -> int:
        """Most matching requests inside any half-open span of window_s seconds."""
        times = sorted(r.t for r in self.log if predicate(r))
        best = start = 0
        for end, t in enumerate(times):
            while times[start] <= t - window_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    def matching(
        self, path_pattern: str, method: str | None = None, status: int | None = None
    ) -> list[RequestRecord]:
        pattern = re.compile(path_pattern)
        return [
            r
            for r in self.log
            if pattern.search(r.path)
            and (method is None or r.method == method.upper())
            and (status is None or r.status == status)
        ]

    @property
    def command_writes(self) -> int:
        """How many times commands were created or bulk-overwritten, all scopes together."""
        return self.global_command_writes + sum(self.guild_command_writes.values())

    @property
    def invalid_requests(self) -> int:
        """401/403/429 answers: Discord bans an IP at 10,000 of these in 10 minutes."""
        return sum(1 for r in self.log if r.status in (401, 403, 429))

    # ----------------------------------------------------------------- REST plumbing

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        p = API_PREFIX
        routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/messages", self._create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message),
            ("GET", "/applications/{app_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("POST", "/applications/{app_id}/commands", self._post_command),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/applications/{app_id}/guilds/{guild_id}/commands", self._post_command),
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self._callback),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self._followup),
            ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", self._wh_get),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._wh_edit,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._wh_delete,
            ),
        ]
        for method, path, handler in routes:
            router.add_route(method, p + path, handler)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        now = time.monotonic()
        method = request.method
        path = request.path[len(API_PREFIX) :]
        response = await self._answer(request, handler, now, method, path)
        answered = not request.get(_DROPPED, False)
        self.log.append(RequestRecord(now, method, path, response.status if answered else 0))
        if answered and response.status == 429:
            self.rejected += 1
        return response

    async def _answer(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        now: float,
        method: str,
        path: str,
    ) -> web.StreamResponse:
        missing = request.match_info.http_exception
        if missing is not None:
            body = {"message": f"{missing.status}: {missing.reason}", "code": 0}
            return _json_response(missing.status, body)
        template = request.match_info.route.resource.canonical  # type: ignore[union-attr]
        route = template[len(API_PREFIX) :]
        is_bot_route = not template.startswith(_TOKEN_ROUTES)
        if is_bot_route and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json_response(401, UNAUTHORIZED)
        window, bucket_hash = self._bucket(method, route, request.match_info)

        storm = _take(self._storms, method, path)
        if storm is not None:
            return self._too_many(window, bucket_hash, now, storm.retry_after, storm.is_global)
        if is_bot_route:
            wait = self._global.retry_after(now)
            if wait > 0:
                return self._too_many(window, bucket_hash, now, wait, True)
        wait = window.retry_after(now)
        if wait > 0:
            return self._too_many(window, bucket_hash, now, wait, False)
        window.hit(now)
        if is_bot_route:
            self._global.hit(now)
        headers = self._limit_headers(window, bucket_hash, now)

        failure = _take(self._fail, method, path)
        if failure is not None:
            return _json_response(failure.status, failure.body, headers)
        drop = _take(self._drops, method, path)
        try:
            response = await handler(request)
        except _ApiError as error:
            response = _json_response(error.status, error.body)
        if drop is not None:
            if drop.hang_s:
                await asyncio.sleep(drop.hang_s)
            if request.transport is not None:
                request.transport.close()
            request[_DROPPED] = True  # aiohttp's write to the closed socket fails quietly
        response.headers.update(headers)
        return response

    def _bucket(self, method: str, route: str, match: Mapping[str, str]) -> tuple[_Window, str]:
        limit = self._route_limits.get((method, route), DEFAULT_ROUTE_LIMIT)
        bucket_hash = hashlib.md5(f"{method} {route}".encode()).hexdigest()
        major = ":".join(match[k] for k in _MAJOR_PARAMS if k in match)
        key = f"{bucket_hash}:{major}"
        if key not in self._buckets:
            self._buckets[key] = _Window(*limit)
        return self._buckets[key], bucket_hash

    @staticmethod
    def _limit_headers(window: _Window, bucket_hash: str, now: float) -> dict[str, str]:
        reset_after = math.ceil(window.reset_after(now) * 1000) / 1000
        return {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(window.remaining(now)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
        }

    def _too_many(
        self, window: _Window, bucket_hash: str, now: float, retry_after: float, is_global: bool
    ) -> web.Response:
        retry_after = math.ceil(retry_after * 1000) / 1000
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": str(self._global_limit[0] if is_global else window.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
        }
        if is_global:
            body["code"] = 0
        return _json_response(429, body, headers)

    # ----------------------------------------------------------------- REST handlers

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json_response(200, self._bot_user())

    async def _get_application(self, request: web.Request) -> web.Response:
        owner = self._user(next((g.owner_id for g in self.guilds.values()), self.bot_id + 1))
        app: Json = {
            "id": str(self.application_id),
            "name": self.bot_name,
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": owner,
            "verify_key": "0" * 64,
            "team": None,
            "flags": 0,
            "summary": "",
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
        }
        return _json_response(200, app)

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json_response(200, {"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {
            "total": 1000,
            "remaining": max(0, 1000 - self.identify_count),
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        }
        body = {"url": self.gateway_url.rstrip("/"), "shards": 1, "session_start_limit": limit}
        return _json_response(200, body)

    def _visible_channel(self, channel_id: int, need: int = 0) -> tuple[_Guild, Json]:
        guild, channel = self._find_channel(channel_id)
        perms = self.permissions_in(channel_id)
        if not perms & VIEW_CHANNEL:
            raise _ApiError(403, MISSING_ACCESS)
        if need and perms & need != need:
            raise _ApiError(403, MISSING_PERMISSIONS)
        return guild, channel

    async def _get_channel(self, request: web.Request) -> web.Response:
        _, channel = self._visible_channel(int(request.match_info["channel_id"]))
        return _json_response(200, channel)

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        guild, _ = self._visible_channel(channel_id, SEND_MESSAGES)
        payload = await _read_payload(request)
        error = _message_error(payload)
        if error is not None:
            raise error
        if payload.get("attachments") and not self.permissions_in(channel_id) & ATTACH_FILES:
            raise _ApiError(403, MISSING_PERMISSIONS)
        self._check_reference(payload)
        nonce = payload.get("nonce")
        now = time.monotonic()
        if nonce is not None and payload.get("enforce_nonce"):
            key = (channel_id, str(nonce))
            earlier = self._nonces.get(key)
            if earlier is not None and now - earlier[0] < self.nonce_ttl_s:
                self.nonce_hits += 1
                return _json_response(200, self._message_json(earlier[1]))
        can_ping_all = bool(self.permissions_in(channel_id) & MENTION_EVERYONE)
        record = self._store_message(channel_id, guild.id, payload, "channel", can_ping_all)
        if nonce is not None and payload.get("enforce_nonce"):
            self._nonces[(channel_id, str(nonce))] = (now, record)
        await self._echo("MESSAGE_CREATE", record)
        return _json_response(200, self._message_json(record))

    def _check_reference(self, payload: Json) -> None:
        ref = payload.get("message_reference")
        if not ref or not ref.get("message_id") or ref.get("fail_if_not_exists") is False:
            return
        mid = int(ref["message_id"])
        if mid not in self._known_message_ids and mid not in self._message_index:
            raise _form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")

    def _store_message(
        self,
        channel_id: int,
        guild_id: int | None,
        payload: Json,
        source: str,
        can_ping_all: bool,
        interaction: FakeInteraction | None = None,
    ) -> Json:
        content = str(payload.get("content") or "")
        record: Json = {
            "id": self._ids.next(),
            "channel_id": channel_id,
            "guild_id": guild_id,
            "content": content,
            "embeds": list(payload.get("embeds") or []),
            "components": list(payload.get("components") or []),
            "allowed_mentions": payload.get("allowed_mentions"),
            "nonce": payload.get("nonce"),
            "enforce_nonce": bool(payload.get("enforce_nonce")),
            "flags": int(payload.get("flags") or 0),
            "tts": bool(payload.get("tts")),
            "message_reference": payload.get("message_reference"),
            "attachments": self._attachments(channel_id, payload.get("attachments")),
            "pings": _pings(content, payload.get("allowed_mentions"), can_ping_all),
            "source": source,
            "interaction_id": interaction.id if interaction else None,
            "edits": [],
            "deleted": False,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "t": time.monotonic(),
        }
        self.messages[channel_id].append(record)
        self._message_index[record["id"]] = record
        return record

    def _attachments(self, channel_id: int, uploads: list[Json] | None) -> list[Json]:
        """Uploaded files as Discord returns them (ids and URLs on this server; never fetched)."""
        out = []
        for upload in uploads or []:
            attachment_id = self._ids.next()
            filename = str(upload.get("filename") or "file")
            url = (
                f"http://127.0.0.1:{self._port}/attachments/{channel_id}/{attachment_id}/{filename}"
            )
            out.append(
                {
                    "id": str(attachment_id),
                    "filename": filename,
                    "size": int(upload.get("size") or 0),
                    "url": url,
                    "proxy_url": url,
                    "content_type": upload.get("content_type"),
                    "description": upload.get("description"),
                }
            )
        return out

    def _message_json(self, record: Json) -> Json:
        pings = record["pings"]
        data: Json = {
            "id": str(record["id"]),
            "channel_id": str(record["channel_id"]),
            "author": self._bot_user(),
            "content": record["content"],
            "timestamp": record["timestamp"],
            "edited_timestamp": record["edited_timestamp"],
            "tts": record["tts"],
            "mention_everyone": pings["everyone"],
            "mentions": [self._user(u) for u in pings["users"]],
            "mention_roles": [str(r) for r in pings["roles"]],
            "attachments": record["attachments"],
            "embeds": record["embeds"],
            "components": record["components"],
            "pinned": False,
            "type": 0,
            "flags": record["flags"],
        }
        if record["guild_id"] is not None:
            data["guild_id"] = str(record["guild_id"])
        if record["nonce"] is not None:
            data["nonce"] = record["nonce"]
        if record["message_reference"]:
            data["message_reference"] = record["message_reference"]
        if record["source"] != "channel":
            data["webhook_id"] = str(self.application_id)
            data["application_id"] = str(self.application_id)
            if record["source"] == "interaction":
                data["type"] = 20
        return data

    def _apply_edit(self, record: Json, payload: Json) -> None:
        error = _message_error(payload, require_body=False)
        if error is not None:
            raise error
        for key in ("content", "embeds", "components", "allowed_mentions", "flags"):
            if key in payload:
                record[key] = payload[key] if payload[key] is not None else record[key]
        if payload.get("attachments") is not None:
            kept = {str(a["id"]): a for a in record["attachments"]}
            fresh = [a for a in payload["attachments"] if str(a.get("id")) not in kept]
            record["attachments"] = [
                kept[str(a["id"])] for a in payload["attachments"] if str(a.get("id")) in kept
            ] + self._attachments(record["channel_id"], fresh)
        record["content"] = str(record["content"] or "")
        record["pings"] = _pings(record["content"], record["allowed_mentions"], False)
        record["edits"].append(payload)
        record["edited_timestamp"] = _iso()

    async def _get_message(self, request: web.Request) -> web.Response:
        record = self._channel_message(request)
        return _json_response(200, self._message_json(record))

    def _channel_message(self, request: web.Request) -> Json:
        channel_id = int(request.match_info["channel_id"])
        self._visible_channel(channel_id)
        record = self._message_index.get(int(request.match_info["message_id"]))
        if record is None or record["deleted"] or record["channel_id"] != channel_id:
            raise _ApiError(404, UNKNOWN_MESSAGE)
        return record

    async def _edit_message(self, request: web.Request) -> web.Response:
        record = self._channel_message(request)
        self._apply_edit(record, await _read_payload(request))
        await self._echo("MESSAGE_UPDATE", record)
        return _json_response(200, self._message_json(record))

    async def _delete_message(self, request: web.Request) -> web.Response:
        record = self._channel_message(request)
        record["deleted"] = True
        await self._echo_delete(record)
        return _json_response(204, None)

    async def _echo(self, event: str, record: Json) -> None:
        if not self.echo_messages or record["guild_id"] is None or record["flags"] & 64:
            return
        await self.dispatch(event, self._message_json(record))

    async def _echo_delete(self, record: Json) -> None:
        if self.echo_messages and record["guild_id"] is not None:
            data = {"id": str(record["id"]), "channel_id": str(record["channel_id"])}
            data["guild_id"] = str(record["guild_id"])
            await self.dispatch("MESSAGE_DELETE", data)

    # application commands

    def _command_scope(self, request: web.Request) -> tuple[list[Json], int | None]:
        if int(request.match_info["app_id"]) != self.application_id:
            raise _ApiError(404, UNKNOWN_APPLICATION)
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return self.global_commands, None
        gid = int(guild_id)
        if gid not in self.guilds or self.guilds[gid].left:
            raise _ApiError(403, MISSING_ACCESS)
        return self.guild_commands[gid], gid

    def _stored_command(self, spec: Json, existing: list[Json], guild_id: int | None) -> Json:
        kind = int(spec.get("type", 1))
        old = next(
            (c for c in existing if c["name"] == spec.get("name") and c["type"] == kind), None
        )
        command = {
            "id": old["id"] if old else str(self._ids.next()),
            "application_id": str(self.application_id),
            "version": str(self._ids.next()),
            "type": kind,
            "name": spec.get("name"),
            "description": spec.get("description", ""),
            "options": spec.get("options") or [],
            "default_member_permissions": spec.get("default_member_permissions"),
            "dm_permission": spec.get("dm_permission", True),
            "nsfw": bool(spec.get("nsfw", False)),
            "contexts": spec.get("contexts"),
            "integration_types": spec.get("integration_types") or [0],
            "name_localizations": spec.get("name_localizations"),
            "description_localizations": spec.get("description_localizations"),
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    def _count_write(self, guild_id: int | None) -> None:
        if guild_id is None:
            self.global_command_writes += 1
        else:
            self.guild_command_writes[guild_id] += 1

    async def _get_commands(self, request: web.Request) -> web.Response:
        commands, _ = self._command_scope(request)
        return _json_response(200, commands)

    async def _put_commands(self, request: web.Request) -> web.Response:
        commands, guild_id = self._command_scope(request)
        specs = await request.json()
        error = _command_error(specs)
        if error is not None:
            raise error
        stored = [self._stored_command(spec, commands, guild_id) for spec in specs]
        commands[:] = stored
        self._count_write(guild_id)
        return _json_response(200, stored)

    async def _post_command(self, request: web.Request) -> web.Response:
        commands, guild_id = self._command_scope(request)
        spec = await request.json()
        error = _command_error([spec])
        if error is not None:
            raise error
        command = self._stored_command(spec, commands, guild_id)
        commands[:] = [c for c in commands if c["id"] != command["id"]] + [command]
        self._count_write(guild_id)
        return _json_response(201, command)

    # interactions

    def _register_interaction(self, data: Json) -> None:
        token = str(data["token"])
        if token in self.interactions:
            return
        channel_id = int(data.get("channel_id") or data.get("channel", {}).get("id"))
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        self.interactions[token] = FakeInteraction(
            id=int(data["id"]),
            token=token,
            channel_id=channel_id,
            guild_id=guild_id,
            created=time.monotonic(),
        )

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(request.match_info["interaction_token"])
        if interaction is None or interaction.id != int(request.match_info["interaction_id"]):
            raise _ApiError(404, UNKNOWN_INTERACTION)
        if time.monotonic() - interaction.created > self.interaction_ack_s:
            raise _ApiError(404, UNKNOWN_INTERACTION)
        if interaction.ack_type is not None:
            raise _ApiError(400, ALREADY_ACKNOWLEDGED)
        body = await _read_payload(request)
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        if kind == 4:
            error = _message_error(data)
            if error is not None:
                raise error
        interaction.ack_type = kind
        interaction.callbacks.append({"type": kind, "data": data, "t": time.monotonic()})
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) | (128 if kind == 5 else 0)
            interaction.original = self._store_message(
                interaction.channel_id,
                interaction.guild_id,
                {**data, "flags": flags},
                "interaction",
                True,
                interaction,
            )
            await self._echo("MESSAGE_CREATE", interaction.original)
        if "with_response" not in request.query:
            return _json_response(204, None)
        callback: Json = {
            "interaction": {
                "id": str(interaction.id),
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
            },
            "resource": {"type": kind},
        }
        if interaction.original is not None:
            callback["interaction"]["response_message_id"] = str(interaction.original["id"])
            if kind == 4:
                callback["resource"]["message"] = self._message_json(interaction.original)
        return _json_response(200, callback)

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction:
        interaction = self.interactions.get(request.match_info["webhook_token"])
        if int(request.match_info["webhook_id"]) != self.application_id or interaction is None:
            raise _ApiError(404, UNKNOWN_WEBHOOK)
        if time.monotonic() - interaction.created > INTERACTION_TOKEN_S:
            raise _ApiError(401, {"code": 50027, "message": "Invalid Webhook Token"})
        if interaction.ack_type is None:
            raise _ApiError(404, UNKNOWN_WEBHOOK)
        return interaction

    def _webhook_message(self, request: web.Request, interaction: FakeInteraction) -> Json:
        ref = request.match_info["message_id"]
        if ref == "@original":
            record = interaction.original
        else:
            ids = {m["id"]: m for m in [interaction.original, *interaction.followups] if m}
            record = ids.get(int(ref)) if ref.isdigit() else None
        if record is None or record["deleted"]:
            raise _ApiError(404, UNKNOWN_MESSAGE)
        return record

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        payload = await _read_payload(request)
        error = _message_error(payload)
        if error is not None:
            raise error
        record = self._store_message(
            interaction.channel_id, interaction.guild_id, payload, "followup", True, interaction
        )
        interaction.followups.append(record)
        await self._echo("MESSAGE_CREATE", record)
        if request.query.get("wait", "false").lower() in ("1", "true"):
            return _json_response(200, self._message_json(record))
        return _json_response(204, None)

    async def _wh_get(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        return _json_response(200, self._message_json(self._webhook_message(request, interaction)))

    async def _wh_edit(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        record = self._webhook_message(request, interaction)
        payload = await _read_payload(request)
        if record is interaction.original and record["flags"] & 128:
            payload = {**payload, "flags": (int(payload.get("flags") or record["flags"])) & ~128}
        self._apply_edit(record, payload)
        await self._echo("MESSAGE_UPDATE", record)
        return _json_response(200, self._message_json(record))

    async def _wh_delete(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        record = self._webhook_message(request, interaction)
        record["deleted"] = True
        await self._echo_delete(record)
        return _json_response(204, None)

    # ----------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4096 * 1024)
        await ws.prepare(request)
        self.gateway_connects.append(dict(request.query))
        conn = _Connection(ws, request.query.get("compress"))
        self._connections.add(conn)
        try:
            if request.query.get("encoding", "json") != "json":
                await conn.close(CLOSE_DECODE_ERROR)
                return ws
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake-gateway"]}
            await conn.send({"op": OP_HELLO, "d": hello, "s": None, "t": None})
            async for msg in ws:
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await conn.close(CLOSE_DECODE_ERROR)
                    break
                if conn.limiter.retry_after(time.monotonic()) > 0:
                    await conn.close(CLOSE_RATE_LIMITED)
                    break
                conn.limiter.hit(time.monotonic())
                await self._on_gateway_payload(conn, payload)
        finally:
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client that closes with 1000/1001 ends its session (Discord's rule).
                if not conn.server_closed and ws.close_code in (1000, 1001):
                    self._sessions.pop(session.id, None)
        return ws

    async def _on_gateway_payload(self, conn: _Connection, payload: Json) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeat_count += 1
            await conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(conn, data or {})
        elif op == OP_RESUME:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await conn.close(CLOSE_NOT_AUTHENTICATED)
        elif op == OP_PRESENCE:
            self.presence_updates.append(data or {})
        elif op == OP_REQUEST_MEMBERS:
            await self._send_members(conn.session, data or {})
        elif op != OP_VOICE:
            await conn.close(CLOSE_UNKNOWN_OPCODE)

    async def _identify(self, conn: _Connection, data: Json) -> None:
        if conn.session is not None:
            await conn.close(CLOSE_ALREADY_AUTHENTICATED)
            return
        if data.get("token") != self.token:
            await conn.close(CLOSE_AUTH_FAILED)
            return
        intents = int(data.get("intents") or 0)
        if (
            self.allowed_intents is not None
            and intents & PRIVILEGED_INTENTS & ~self.allowed_intents
        ):
            await conn.close(CLOSE_DISALLOWED_INTENTS)
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < shard_count:
            await conn.close(CLOSE_INVALID_SHARD)
            return
        self.identify_count += 1
        self.identify_payloads.append(data)
        session = _Session(secrets.token_hex(16), self.token, intents, (shard_id, shard_count))
        self._sessions[session.id] = session
        conn.session = session
        session.conn = conn
        owned = [g for g in self.guilds.values() if not g.left and session.owns_guild(g.id)]
        ready = {
            "v": 10,
            "user": self._bot_user(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in owned],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-gateway"],
        }
        await self._emit(session, "READY", ready)
        for guild in owned:
            await self._emit(session, "GUILD_CREATE", self.guild_payload(guild.id))

    async def _resume(self, conn: _Connection, data: Json) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        if session is None or data.get("token") != session.token or conn.session is not None:
            self.invalid_resume_count += 1
            await conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        if seq > len(session.history):
            await conn.close(CLOSE_INVALID_SEQ)
            return
        old = session.conn
        if old is not None and old is not conn:
            session.conn = None
            await old.close(CLOSE_UNKNOWN_ERROR)
        self.resume_count += 1
        conn.session = session
        conn.cursor = seq
        session.conn = conn
        await self._emit(session, "RESUMED", {"_trace": ["fake-gateway"]})

    async def _send_members(self, session: _Session, data: Json) -> None:
        guild = self.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        members = [m for uid, m in guild.members.items() if not wanted or uid in wanted]
        chunk: Json = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._emit(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _emit(self, session: _Session, event: str, data: Json) -> None:
        payload = {"op": OP_DISPATCH, "t": event, "s": len(session.history) + 1, "d": data}
        session.history.append(payload)
        await self._pump(session)

    async def _pump(self, session: _Session) -> None:
        """Send a session's unsent history in order; the cursor lives on the connection."""
        conn = session.conn
        if conn is None:
            return
        async with conn.lock:
            while session.conn is conn and conn.cursor < len(session.history):
                payload = session.history[conn.cursor]
                conn.cursor += 1
                if not await conn.write(payload):
                    break

    def _shape(self, session: _Session, event: str, data: Json) -> Json:
        """What this session may see: no message content without the intent (Discord's rule)."""
        if (
            event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE")
            or session.intents & INTENT_MESSAGE_CONTENT
        ):
            return data
        author = (data.get("author") or {}).get("id")
        mentioned = any(str(u.get("id")) == str(self.bot_id) for u in data.get("mentions") or [])
        if not data.get("guild_id") or author == str(self.bot_id) or mentioned:
            return data
        hidden = {"content": "", "embeds": [], "attachments": [], "components": []}
        return {**data, **{k: v for k, v in hidden.items() if k in data}}


def _take(injections: list[_Injection], method: str, path: str) -> _Injection | None:
    for injection in injections:
        if injection.matches(method, path):
            injection.remaining -= 1
            if injection.remaining <= 0:
                injections.remove(injection)
            return injection
    return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _event_guild_id(event: str, data: Json) -> int | None:
    raw = (
        data.get("id")
        if event.startswith("GUILD_") and "guild_id" not in data
        else data.get("guild_id")
    )
    return int(raw) if raw else None


async def _read_payload(request: web.Request) -> Json:
    """JSON body, or multipart with payload_json plus files (as discord.py sends uploads)."""
    if not request.can_read_body:
        return {}
    if request.content_type.startswith("multipart/"):
        payload: Json = {}
        files: list[Json] = []
        reader = await request.multipart()
        async for part in _parts(reader):
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif name.startswith("files["):
                data = await part.read()
                kind = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
                files.append({"filename": part.filename, "size": len(data), "content_type": kind})
        if files:
            attachments = payload.get("attachments") or [{"id": i} for i in range(len(files))]
            payload["attachments"] = [{**a, **f} for a, f in zip(attachments, files, strict=False)]
        return payload
    result: Json = await request.json()
    return result


async def _parts(reader: aiohttp.MultipartReader) -> AsyncIterator[aiohttp.BodyPartReader]:
    while True:
        part = await reader.next()
        if part is None:
            return
        if isinstance(part, aiohttp.BodyPartReader):
            yield part
