"""Discord: slash commands, mentions and DMs in, embeds out; every decision stays in BotService.

The client runs with the non-privileged intents only (no message content): questions come as
`/ask`, as a mention of the bot, or in a DM, which Discord delivers with their text anyway.
Every message carries `allowed_mentions=none`, so text from feeds or from a hostile option
cannot ping anyone. Commands are synced only when their payload (translations included) hashes
differently from the last sync, because Discord caps command creates at 200 a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import re
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.app_commands import Choice, locale_str

from bot import __version__
from bot.app import App
from bot.config import Settings
from bot.core.deliver.render import discord_reply
from bot.core.errors import UsageError
from bot.core.gazetteer import flag
from bot.core.models import TOPICS, Answer, Mode, Reply, Target
from bot.core.service import BotService
from bot.core.subscribe_parse import describe

log = logging.getLogger(__name__)

PLATFORM = "discord"
STREAM_EDIT_SECONDS = 1.5
CLOSE_SECONDS = 4.0
COMMANDS_HASH_KEY = "discord.commands_hash"
GUILD_REMOVED = "the bot was removed from this server"
NO_MENTIONS = discord.AllowedMentions.none()
UNKNOWN_INTERACTION = 10062
ALREADY_ACKNOWLEDGED = 40060
CANNOT_DM = 50007
# Offered first when a country option is still empty.
POPULAR_COUNTRIES = ("KR", "JP", "CN", "IN", "FR", "DE", "GB", "US", "EU", "AE", "SA", "SG")
_SPLIT = re.compile(r"[,\s]+")

# Korean names and descriptions, keyed by the English text the commands are declared with.
KOREAN: dict[str, str] = {
    "ask": "질문",
    "Ask about national AI efforts; the answer cites its sources": (
        "국가 AI 전략과 사업에 대해 질문하세요. 답에는 출처가 붙습니다"
    ),
    "question": "질문내용",
    "Your question, e.g. What is Korea's sovereign AI program?": (
        "질문을 입력하세요. 예: 한국 독자 AI 파운데이션 모델 사업은?"
    ),
    "latest": "최신",
    "The newest stories, optionally for one country or topic": (
        "최신 소식 (국가나 주제로 좁힐 수 있습니다)"
    ),
    "filter": "필터",
    "A country (KR, Japan, 한국) or a topic (compute, policy, ...)": (
        "국가(KR, 일본, 한국) 또는 주제(compute, policy 등)"
    ),
    "subscribe": "구독",
    "Get alerts in this channel (needs Manage Channels)": (
        "이 채널에서 알림 받기 (채널 관리 권한 필요)"
    ),
    "countries": "국가",
    "Countries, space or comma separated, e.g. KR JP": (
        "국가 목록 (공백이나 쉼표로 구분), 예: KR JP"
    ),
    "topics": "주제",
    "Topics, e.g. compute policy": "주제 목록, 예: compute policy",
    "keywords": "키워드",
    "Words to look for, comma separated; -word excludes": (
        "찾을 단어 (쉼표로 구분, -단어 는 제외)"
    ),
    "mode": "방식",
    "Each story as it comes, one digest a day, or one a week": (
        "소식마다 바로, 하루 한 번 요약, 또는 매주 요약"
    ),
    "instant": "즉시",
    "digest": "요약",
    "weekly": "주간 요약",
    "time": "시간",
    "Digest time, HH:MM (UTC); weekly: DAY@HH:MM, e.g. fri@17:00": (
        "요약을 받을 시간, HH:MM (UTC). 주간: 요일@HH:MM, 예: fri@17:00"
    ),
    "unsubscribe": "구독취소",
    "Stop alerts in this channel (needs Manage Channels)": (
        "이 채널의 알림 중지 (채널 관리 권한 필요)"
    ),
    "subscription": "구독번호",
    "Which subscription; all removes every one": "취소할 구독 (all 은 전부)",
    "subscriptions": "구독목록",
    "The subscriptions of this channel": "이 채널의 구독 목록",
    "A digest of the last day's stories for this channel": "이 채널 구독에 맞춘 지난 하루 요약",
    "why": "이유",
    "Why a story was or was not delivered here": "어떤 소식이 여기에 왔거나 오지 않은 이유",
    "link": "링크",
    "The story's link": "소식의 링크",
    "help": "도움말",
    "What this bot can do": "이 봇이 할 수 있는 일",
    "status": "상태",
    "Operators only: feeds, queue and gateway health": "운영자 전용: 피드, 대기열, 게이트웨이 상태",
}


class KoreanTranslator(app_commands.Translator):
    """Korean names and descriptions from `KOREAN`; other locales fall back to English."""

    async def translate(
        self,
        string: locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is not discord.Locale.korean:
            return None
        return KOREAN.get(string.message)


# The live answer of the /ask being handled in this task, fed by the streaming model call.
_live_answer: contextvars.ContextVar[LiveAnswer | None] = contextvars.ContextVar(
    "discord_live_answer", default=None
)


class LiveAnswer:
    """Shows a streamed answer by editing one message, at most once every `every` seconds."""

    def __init__(self, edit: Callable[[str], Awaitable[None]], every: float) -> None:
        self._edit = edit
        self._every = every
        self._last = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.text = ""
        self.edits = 0

    def feed(self, delta: str) -> None:
        self.text += delta
        now = asyncio.get_running_loop().time()
        busy = self._task is not None and not self._task.done()
        if not busy and now - self._last >= self._every:
            self._last = now
            self._task = asyncio.create_task(self._show(self.text))

    async def _show(self, text: str) -> None:
        try:
            await self._edit(text)
            self.edits += 1
        except discord.HTTPException as exc:  # a partial view is optional; the final edit is not
            log.info("partial answer edit failed", extra={"status": exc.status, "code": exc.code})

    async def settle(self) -> None:
        """Wait for the edit in flight, so the final text is never overwritten by a partial."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


@dataclasses.dataclass(frozen=True)
class _Body:
    """One rendered message as discord.py wants it."""

    embeds: list[discord.Embed]
    view: discord.ui.View


def point_discord_at(api_base_url: str | None, gateway_url: str | None) -> None:
    """Re-point discord.py at a proxy or test server; a bare host gets Discord's /api/v10."""
    if api_base_url:
        base = api_base_url.rstrip("/")
        if not re.search(r"/api(/v\d+)?$", base):
            base += "/api/v10"
        elif base.endswith("/api"):
            base += "/v10"
        discord.http.Route.BASE = base
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def gateway_intents() -> discord.Intents:
    """Guild and DM messages (for mentions and DMs) and guilds; nothing privileged."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    return intents


def build_client(settings: Settings) -> discord.Client:
    """A Client, or an AutoShardedClient running the shards DISCORD_SHARD_* name."""
    # The bot never joins voice: its missing-voice-library warnings are only noise.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    options: dict[str, Any] = {
        "intents": gateway_intents(),
        "allowed_mentions": NO_MENTIONS,
        "max_messages": None,
        "chunk_guilds_at_startup": False,
    }
    count, ids = settings.discord_shard_count, settings.discord_shard_ids
    if ids and count is None:
        raise UsageError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT as well")
    if count is None:
        return discord.Client(**options)
    if ids and not all(0 <= i < count for i in ids):
        raise UsageError(f"DISCORD_SHARD_IDS must lie in 0..{count - 1}")
    if ids:
        return discord.AutoShardedClient(shard_count=count, shard_ids=list(ids), **options)
    return discord.AutoShardedClient(shard_count=count, **options)


def target_of(channel_id: int | None) -> Target:
    """Threads and forum posts have their own channel id, so they are targets of their own."""
    return Target(platform=PLATFORM, chat_id=str(channel_id or 0), thread_id="")


def render(reply: Reply) -> list[_Body]:
    """Embeds (escaped, mentions broken) and buttons; the view is never kept in memory."""
    bodies: list[_Body] = []
    for raw in discord_reply(reply):
        embeds = [discord.Embed.from_dict(e) for e in raw.get("embeds") or []]
        view = discord.ui.View(timeout=None)
        for row, component_row in enumerate(raw.get("components") or []):
            for item in component_row.get("components") or []:
                view.add_item(
                    discord.ui.Button(
                        style=discord.ButtonStyle(int(item.get("style", 2))),
                        label=str(item.get("label") or "…"),
                        custom_id=str(item["custom_id"]),
                        row=row,
                    )
                )
        view.stop()  # clicks arrive through on_interaction; no per-message view store
        bodies.append(_Body(embeds, view))
    return bodies


def split_countries(text: str, resolve: Callable[[str], str | None]) -> list[str]:
    """`KR, South Korea japan` -> ["KR", "South Korea", "japan"]: longest known name first.

    A longer span counts only when its last word changes what it names, because the
    gazetteer also resolves a name followed by another word ("United States japan").
    """
    out: list[str] = []
    for chunk in text.split(","):
        words = chunk.split()
        i = 0
        while i < len(words):
            n = 1
            for size in (3, 2):
                if i + size > len(words):
                    continue
                code = resolve(" ".join(words[i : i + size]))
                if code and code != resolve(" ".join(words[i : i + size - 1])):
                    n = size
                    break
            out.append(" ".join(words[i : i + n]))
            i += n
    return out


def subscribe_args(
    countries: str | None,
    topics: str | None,
    keywords: str | None,
    mode: str | None,
    time: str | None,
    resolve: Callable[[str], str | None],
) -> str:
    """The slash-command options as the text form the core parses (`KR topic:compute ...`)."""
    parts = [shlex.quote(c) for c in split_countries(countries or "", resolve)]
    parts += [shlex.quote(f"topic:{t}") for t in _SPLIT.split(topics or "") if t]
    for word in (keywords or "").split(","):
        word = " ".join(word.split())
        if word:
            parts.append(shlex.quote(f"kw:{word}"))
    when = (time or "").strip()
    if mode == Mode.INSTANT.value and when:
        raise UsageError("a time applies to digests only: choose mode digest, or leave time out")
    if mode == "weekly":  # time may name the day too: fri@17:00
        parts.append(shlex.quote(f"weekly@{when}") if when else "weekly")
    elif mode == Mode.DIGEST.value or when:
        parts.append(shlex.quote(f"digest@{when}") if when else "digest")
    elif mode == Mode.INSTANT.value:
        parts.append("instant")
    return " ".join(parts)


class DiscordBot:
    """One gateway client with its command tree, answering through BotService."""

    def __init__(self, app: App, client: discord.Client | None = None) -> None:
        self.app = app
        self.client = client or build_client(app.settings)
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(self.client)
        self.tree.on_error = self._on_command_error  # type: ignore[method-assign]
        # Same service as the other adapters, but its model call streams into the live answer.
        base = app.service
        self.service = BotService(
            base.store,
            base.gazetteer,
            base.extractive,
            llm=self._model_answer if app.llm is not None else None,
        )
        self.translator = KoreanTranslator()
        self.synced = False
        self._add_commands()
        self.client.setup_hook = self._setup_hook  # type: ignore[method-assign]
        for handler in (
            self.on_message,
            self.on_interaction,
            self.on_guild_remove,
            self.on_guild_join,
        ):
            self.client.event(handler)

    # --- lifecycle --------------------------------------------------------------------------
    async def serve(self, token: str, stop: asyncio.Event) -> None:
        """Run the gateway until `stop` is set (or the client fails), then close cleanly."""
        runner = asyncio.create_task(self.client.start(token), name="discord-gateway")
        waiter = asyncio.create_task(stop.wait(), name="discord-stop")
        try:
            await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await self.close()
            if not runner.done():
                runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(runner), timeout=1.0)
        if runner.done() and not runner.cancelled() and runner.exception() is not None:
            exc = runner.exception()
            if isinstance(exc, discord.LoginFailure):
                log.error("discord login failed: check DISCORD_BOT_TOKEN")
            else:
                log.error("discord gateway stopped", extra={"reason": repr(exc)})

    async def close(self) -> None:
        """Close the gateway (code 1000) and the HTTP session, within CLOSE_SECONDS."""
        try:
            await asyncio.wait_for(self.client.close(), timeout=CLOSE_SECONDS)
        except TimeoutError:
            log.warning("discord close timed out")

    async def _setup_hook(self) -> None:
        await self.tree.set_translator(self.translator)
        try:
            self.synced = await self.sync_commands()
        except discord.HTTPException as exc:  # the old commands keep working; retry next start
            log.error("command sync failed", extra={"status": exc.status, "code": exc.code})

    async def command_payload(self) -> list[dict[str, Any]]:
        """What a sync would send, translations included."""
        return [
            await command.get_translated_payload(self.tree, self.translator)
            for command in self.tree.get_commands()
        ]

    async def sync_commands(self) -> bool:
        """Sync when the payload changed since the last sync; True when it synced."""
        payload = await self.command_payload()
        encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        digest = hashlib.sha256(encoded).hexdigest()
        key = f"{COMMANDS_HASH_KEY}:{self.client.application_id}"
        if self.app.store.meta.get(key) == digest:
            log.info("commands unchanged; not syncing", extra={"commands": len(payload)})
            return False
        await self.tree.sync()
        self.app.store.meta.set(key, digest)
        log.info("commands synced", extra={"commands": len(payload)})
        return True

    # --- commands ---------------------------------------------------------------------------
    def _add_commands(self) -> None:
        tree = self.tree

        @tree.command(
            name=locale_str("ask"),
            description=locale_str("Ask about national AI efforts; the answer cites its sources"),
        )
        @app_commands.rename(question=locale_str("question"))
        @app_commands.describe(
            question=locale_str("Your question, e.g. What is Korea's sovereign AI program?")
        )
        async def ask(interaction: discord.Interaction, question: str) -> None:
            await self.ask(interaction, question)

        @tree.command(
            name=locale_str("latest"),
            description=locale_str("The newest stories, optionally for one country or topic"),
        )
        @app_commands.rename(filter=locale_str("filter"))
        @app_commands.describe(
            filter=locale_str("A country (KR, Japan, 한국) or a topic (compute, policy, ...)")
        )
        async def latest(interaction: discord.Interaction, filter: str | None = None) -> None:
            await self.respond(interaction, self.service.latest(filter or ""))

        @latest.autocomplete("filter")
        async def latest_filter(
            interaction: discord.Interaction, current: str
        ) -> list[Choice[str]]:
            found = self.topic_choices(current, single=True)
            return (found + self.country_choices(current, single=True))[:25]

        @tree.command(
            name=locale_str("subscribe"),
            description=locale_str("Get alerts in this channel (needs Manage Channels)"),
        )
        @app_commands.default_permissions(manage_channels=True)
        @app_commands.rename(
            countries=locale_str("countries"),
            topics=locale_str("topics"),
            keywords=locale_str("keywords"),
            mode=locale_str("mode"),
            time=locale_str("time"),
        )
        @app_commands.describe(
            countries=locale_str("Countries, space or comma separated, e.g. KR JP"),
            topics=locale_str("Topics, e.g. compute policy"),
            keywords=locale_str("Words to look for, comma separated; -word excludes"),
            mode=locale_str("Each story as it comes, one digest a day, or one a week"),
            time=locale_str("Digest time, HH:MM (UTC); weekly: DAY@HH:MM, e.g. fri@17:00"),
        )
        @app_commands.choices(
            mode=[
                Choice(name=locale_str("instant"), value=Mode.INSTANT.value),
                Choice(name=locale_str("digest"), value=Mode.DIGEST.value),
                Choice(name=locale_str("weekly"), value="weekly"),
            ]
        )
        async def subscribe(
            interaction: discord.Interaction,
            countries: str | None = None,
            topics: str | None = None,
            keywords: str | None = None,
            mode: str | None = None,
            time: str | None = None,
        ) -> None:
            await self.subscribe(interaction, countries, topics, keywords, mode, time)

        @subscribe.autocomplete("countries")
        async def subscribe_countries(
            interaction: discord.Interaction, current: str
        ) -> list[Choice[str]]:
            return self.country_choices(current)

        @subscribe.autocomplete("topics")
        async def subscribe_topics(
            interaction: discord.Interaction, current: str
        ) -> list[Choice[str]]:
            return self.topic_choices(current)

        @tree.command(
            name=locale_str("unsubscribe"),
            description=locale_str("Stop alerts in this channel (needs Manage Channels)"),
        )
        @app_commands.default_permissions(manage_channels=True)
        @app_commands.rename(subscription=locale_str("subscription"))
        @app_commands.describe(subscription=locale_str("Which subscription; all removes every one"))
        async def unsubscribe(
            interaction: discord.Interaction, subscription: str | None = None
        ) -> None:
            await self.unsubscribe(interaction, subscription or "")

        @unsubscribe.autocomplete("subscription")
        async def unsubscribe_which(
            interaction: discord.Interaction, current: str
        ) -> list[Choice[str]]:
            return self.subscription_choices(target_of(interaction.channel_id), current)

        @tree.command(
            name=locale_str("subscriptions"),
            description=locale_str("The subscriptions of this channel"),
        )
        async def subscriptions(interaction: discord.Interaction) -> None:
            target = target_of(interaction.channel_id)
            await self.respond(interaction, self.service.subscriptions(target), ephemeral=True)

        @tree.command(
            name=locale_str("digest"),
            description=locale_str("A digest of the last day's stories for this channel"),
        )
        async def digest(interaction: discord.Interaction) -> None:
            target = target_of(interaction.channel_id)
            await self.respond(interaction, self.service.digest(target))

        @tree.command(
            name=locale_str("why"),
            description=locale_str("Why a story was or was not delivered here"),
        )
        @app_commands.rename(link=locale_str("link"))
        @app_commands.describe(link=locale_str("The story's link"))
        async def why(interaction: discord.Interaction, link: str) -> None:
            target = target_of(interaction.channel_id)
            await self.respond(interaction, self.service.why(target, link), ephemeral=True)

        @tree.command(name=locale_str("help"), description=locale_str("What this bot can do"))
        async def help_(interaction: discord.Interaction) -> None:
            await self.respond(interaction, self.service.help(), ephemeral=True)

        @tree.command(
            name=locale_str("status"),
            description=locale_str("Operators only: feeds, queue and gateway health"),
        )
        async def status(interaction: discord.Interaction) -> None:
            if str(interaction.user.id) not in self.app.settings.owner_ids:
                reply = Reply(text="Only the bot's operators may use /status.")
            else:
                reply = self.status_reply()
            await self.respond(interaction, reply, ephemeral=True)

    # --- command bodies ---------------------------------------------------------------------
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        """Defer at once (the 3 s window), then show the answer, streamed when a model is set."""
        await interaction.response.defer(thinking=True)
        target = target_of(interaction.channel_id)

        async def show_partial(text: str) -> None:
            body = render(Reply(text=text.rstrip() + " …"))[0]
            await interaction.edit_original_response(
                embeds=body.embeds, allowed_mentions=NO_MENTIONS
            )

        live = LiveAnswer(show_partial, STREAM_EDIT_SECONDS)
        token = _live_answer.set(live)
        try:
            reply = await self.service.ask(target, str(interaction.user.id), question)
        finally:
            _live_answer.reset(token)
            await live.settle()
        await self.respond(interaction, reply)

    async def _model_answer(self, question: str, history: list[dict[str, str]]) -> Answer:
        """The model's answer; inside /ask its text is shown as it arrives."""
        llm = self.app.llm
        assert llm is not None
        live = _live_answer.get()
        if live is None:
            return await llm.answer(question, history)
        stream = llm.stream(question, history)
        async for delta in stream:
            live.feed(delta)
        if stream.result is None:  # iteration always sets it; be safe
            raise RuntimeError("answer stream ended without a result")
        return stream.result

    async def subscribe(
        self,
        interaction: discord.Interaction,
        countries: str | None,
        topics: str | None,
        keywords: str | None,
        mode: str | None,
        time: str | None,
    ) -> None:
        if not await self._may_manage(interaction):
            return
        target = target_of(interaction.channel_id)
        try:
            args = subscribe_args(
                countries, topics, keywords, mode, time, self.app.gazetteer.country_code
            )
        except UsageError as exc:
            await self.respond(interaction, Reply(text=str(exc)), ephemeral=True)
            return
        await self._change(interaction, target, lambda: self.service.subscribe(target, args))

    async def unsubscribe(self, interaction: discord.Interaction, which: str) -> None:
        if not await self._may_manage(interaction):
            return
        target = target_of(interaction.channel_id)
        await self._change(interaction, target, lambda: self.service.unsubscribe(target, which))

    async def _change(
        self, interaction: discord.Interaction, target: Target, act: Callable[[], Reply]
    ) -> None:
        """A change to the channel's subscriptions is shown to all; a refusal only to the asker."""
        subs = self.app.store.subscriptions
        before = [s.id for s in subs.for_target(target)]
        reply = act()
        changed = [s.id for s in subs.for_target(target)] != before
        await self.respond(interaction, reply, ephemeral=not changed)

    async def _may_manage(self, interaction: discord.Interaction) -> bool:
        """Server-side check behind the default permissions, which server admins can loosen."""
        if interaction.guild_id is None:
            return True  # a DM with the bot belongs to the person in it
        perms = interaction.permissions
        if perms.manage_channels or perms.administrator:
            return True
        reply = Reply(
            text="Only members who may manage this channel (Manage Channels) can change "
            "its subscriptions. Ask a moderator, or use /subscriptions to see them."
        )
        await self.respond(interaction, reply, ephemeral=True)
        return False

    def status_reply(self) -> Reply:
        store = self.app.store
        feeds = store.sources.all()
        failing = [s for s in feeds if s.consecutive_failures]
        shards = self.client.shard_count or 1
        lines = [
            f"Sovereign Watch {__version__}",
            f"Discord: {len(self.client.guilds)} servers, {shards} shard(s), "
            f"latency {self.client.latency * 1000:.0f} ms",
            f"Articles: {store.articles.count()}, outbox depth: {store.outbox.depth()}",
            f"Feeds: {len(feeds)} ({len(failing)} failing)",
        ]
        lines += [f"  failing: {s.url} — {s.last_error or s.last_status}" for s in failing[:10]]
        return Reply(text="\n".join(lines), title="Status")

    # --- autocomplete -----------------------------------------------------------------------
    def country_choices(self, current: str, *, single: bool = False) -> list[Choice[str]]:
        """Completions for the word being typed, keeping the words already chosen."""
        gaz = self.app.gazetteer
        if single:
            done, typing = [], current.strip()
        elif "," in current:
            head, _, typing = current.rpartition(",")
            done = [gaz.country_code(p) or p.strip() for p in head.split(",") if p.strip()]
            typing = typing.strip()
        else:
            words = current.split(" ")
            done, typing = [w for w in words[:-1] if w], words[-1]
        codes = self._matching_countries(typing)
        if not typing and not single:
            codes = [c for c in POPULAR_COUNTRIES if c not in done]
        choices: list[Choice[str]] = []
        for code in codes:
            if code in done:
                continue
            value = " ".join([*done, code])
            name = f"{flag(code)} {gaz.country_name(code)} ({code})".strip()
            if done:
                name = f"{' '.join(done)} + {name}"
            if len(value) <= 100:
                choices.append(Choice(name=name[:100], value=value))
            if len(choices) == 25:
                break
        return choices

    def _matching_countries(self, typed: str) -> list[str]:
        gaz = self.app.gazetteer
        text = typed.strip().lower()
        if not text:
            return list(POPULAR_COUNTRIES)
        exact = gaz.country_code(typed)
        ranked: list[tuple[int, str, str]] = []
        for code in gaz.country_codes():
            names = [gaz.country_name(code).lower(), gaz.country_name(code, "ko").lower()]
            if code == exact or code.lower() == text:
                rank = 0
            elif any(n.startswith(text) for n in names):
                rank = 1
            elif code.lower().startswith(text):
                rank = 2
            elif any(text in n for n in names):
                rank = 3
            else:
                continue
            ranked.append((rank, names[0], code))
        return [code for _, _, code in sorted(ranked)]

    def topic_choices(self, current: str, *, single: bool = False) -> list[Choice[str]]:
        if single:
            done, typing = [], current.strip().lower()
        else:
            words = [w for w in _SPLIT.split(current.lower())]
            done = [w for w in words[:-1] if w in TOPICS]
            typing = words[-1] if words else ""
        found = [t for t in TOPICS if t.startswith(typing) and t not in done]
        found += [t for t in TOPICS if typing in t and t not in found and t not in done]
        return [Choice(name=" ".join([*done, t]), value=" ".join([*done, t])) for t in found]

    def subscription_choices(self, target: Target, current: str) -> list[Choice[str]]:
        subs = self.app.store.subscriptions.for_target(target)
        typed = current.strip().lstrip("#").lower()
        choices = [Choice(name="all — every subscription of this channel", value="all")]
        for sub in subs:
            label = f"#{sub.id}: {describe(sub.spec, self.app.gazetteer)}"
            choices.append(Choice(name=label[:100], value=str(sub.id)))
        return [c for c in choices if typed in c.name.lower()][:25]

    # --- replies ----------------------------------------------------------------------------
    async def respond(
        self, interaction: discord.Interaction, reply: Reply, *, ephemeral: bool = False
    ) -> None:
        """First body as the response (or the deferred message), the rest as follow-ups."""
        reply = self._with_pause_note(target_of(interaction.channel_id), reply)
        bodies = render(reply)
        first, rest = bodies[0], bodies[1:]
        if not interaction.response.is_done():
            await interaction.response.send_message(
                embeds=first.embeds,
                view=first.view,
                ephemeral=ephemeral,
                allowed_mentions=NO_MENTIONS,
            )
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            await interaction.edit_original_response(
                embeds=first.embeds, view=first.view, allowed_mentions=NO_MENTIONS
            )
        else:
            await interaction.followup.send(
                embeds=first.embeds,
                view=first.view,
                ephemeral=ephemeral,
                allowed_mentions=NO_MENTIONS,
            )
        for body in rest:
            await interaction.followup.send(
                embeds=body.embeds,
                view=body.view,
                ephemeral=ephemeral,
                allowed_mentions=NO_MENTIONS,
            )

    def _with_pause_note(self, target: Target, reply: Reply) -> Reply:
        """Tell whoever is here that alerts stopped, and why (e.g. a permission was removed)."""
        info = self.app.store.subscriptions.target_info(target)
        if info is None or not info.paused or (reply.note and "paused" in reply.note):
            return reply
        reason = info.paused_reason or "by an operator"
        note = (
            f"Alerts to this channel are paused: {reason}. Make sure I can view this channel, "
            "send messages and embed links here, then run /subscribe to resume."
        )
        return dataclasses.replace(reply, note=f"{reply.note}\n{note}" if reply.note else note)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """One error handler: expired interactions are logged; anything else gets an apology."""
        original = getattr(error, "original", error)
        command = interaction.command.name if interaction.command else None
        if isinstance(original, discord.NotFound) and original.code == UNKNOWN_INTERACTION:
            log.warning(
                "interaction expired before the bot answered",
                extra={"command": command, "channel": interaction.channel_id},
            )
            return
        if isinstance(original, discord.HTTPException) and original.code == ALREADY_ACKNOWLEDGED:
            log.warning("interaction answered twice", extra={"command": command})
            return
        log.error(
            "command failed",
            exc_info=original,
            extra={"command": command, "channel": interaction.channel_id},
        )
        with contextlib.suppress(discord.HTTPException):
            await self.respond(
                interaction, Reply(text="Something went wrong; please try again."), ephemeral=True
            )

    # --- gateway events ---------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        """A DM, or a guild message that mentions the bot: answer it in place."""
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        in_dm = message.guild is None
        if not in_dm and not any(u.id == me.id for u in message.mentions):
            return
        text = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        target = target_of(message.channel.id)
        try:
            reply = await self._message_reply(message, target, text, in_dm)
        except Exception:
            log.exception("message handling failed", extra={"channel": message.channel.id})
            reply = Reply(text="Something went wrong; please try again.")
        if reply is None:
            return
        for i, body in enumerate(render(self._with_pause_note(target, reply))):
            try:
                await message.channel.send(
                    embeds=body.embeds,
                    view=body.view,
                    reference=message if i == 0 else None,  # type: ignore[arg-type]
                    mention_author=False,
                    allowed_mentions=NO_MENTIONS,
                )
            except discord.Forbidden as exc:
                why = (
                    "user does not accept DMs from the bot"
                    if exc.code == CANNOT_DM
                    else "forbidden"
                )
                log.info("cannot reply", extra={"channel": message.channel.id, "reason": why})
                return
            except discord.HTTPException as exc:
                log.warning(
                    "reply failed",
                    extra={"channel": message.channel.id, "status": exc.status, "code": exc.code},
                )
                return

    async def _message_reply(
        self, message: discord.Message, target: Target, text: str, in_dm: bool
    ) -> Reply | None:
        if not text:
            return None if in_dm else self.service.help()
        if not text.startswith("/"):
            return await self.service.ask(target, str(message.author.id), text)
        name = text[1:].split(" ", 1)[0].split("@", 1)[0].lower()
        if name in ("subscribe", "unsubscribe") and not in_dm:
            member = message.author
            perms = (
                message.channel.permissions_for(member)
                if isinstance(member, discord.Member)
                and isinstance(message.channel, discord.abc.GuildChannel | discord.Thread)
                else None
            )
            if perms is None or not (perms.manage_channels or perms.administrator):
                return Reply(
                    text="Only members who may manage this channel can change its "
                    "subscriptions; use /subscribe if you can."
                )
        return await self.service.handle_text(target, str(message.author.id), text)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Button clicks: subscribe shortcuts (`sub:`) and mute buttons on alerts (`mute:`)."""
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(("sub:", "mute:")):
            return
        try:
            if not await self._may_manage(interaction):
                return
            target = target_of(interaction.channel_id)
            if custom_id.startswith("sub:"):
                args = custom_id[4:]
                await self._change(
                    interaction, target, lambda: self.service.subscribe(target, args)
                )
                return
            _, kind, value = [*custom_id.split(":", 2), "", ""][:3]
            kind = {"c": "country", "t": "topic"}.get(kind, kind)
            await self._change(interaction, target, lambda: self.service.mute(target, kind, value))
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_INTERACTION:
                raise
            log.warning("button click expired", extra={"channel": interaction.channel_id})
        except discord.HTTPException as exc:
            log.warning("button reply failed", extra={"status": exc.status, "code": exc.code})

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Kicked or the server was deleted: pause its channels' subscriptions at once."""
        ids = {str(c.id) for c in guild.channels} | {str(t.id) for t in guild.threads}
        paused = self._set_paused(ids, True, GUILD_REMOVED)
        log.info("removed from a server", extra={"guild": guild.id, "paused_targets": paused})

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Added back: resume what the removal paused (other pauses stay)."""
        ids = {str(c.id) for c in guild.channels} | {str(t.id) for t in guild.threads}
        resumed = self._set_paused(ids, False, GUILD_REMOVED)
        log.info("joined a server", extra={"guild": guild.id, "resumed_targets": resumed})

    def _set_paused(self, channel_ids: set[str], paused: bool, reason: str) -> int:
        subs = self.app.store.subscriptions
        targets = {
            s.target
            for s in subs.all()
            if s.target.platform == PLATFORM
            and s.target.chat_id in channel_ids
            and s.paused != paused
            and (paused or s.paused_reason == reason)
        }
        for target in targets:
            subs.set_paused(target, paused, reason)
        return len(targets)


async def run_discord(app: App, stop: asyncio.Event) -> None:
    """Serve Discord in the shared event loop until `stop` is set; close within 5 s."""
    token = app.settings.discord_bot_token
    if token is None:
        raise UsageError("DISCORD_BOT_TOKEN is not set")
    point_discord_at(app.settings.discord_api_base_url, app.settings.discord_gateway_url)
    bot = DiscordBot(app)
    await bot.serve(token.get_secret_value(), stop)
