"""Telegram chat adapter: python-telegram-bot updates in, BotService calls, HTML replies out.

The core decides what to say; this module decides how Telegram shows it (HTML in 4,096-character
parts, inline keyboards, drafts or edits while an answer streams) and enforces what only Telegram
knows: group admins, forum topics, membership changes and group upgrades. Sends are paced by the
delivery engine's limiter (pass the worker's to share one budget) and a 429 pauses only the chat
it came from, so a flood in one chat never stalls another.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import re
import secrets
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, MessageEntityType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import __version__
from bot.adapters.telegram_urls import api_base_urls
from bot.core.answer_text import question_language, text
from bot.core.deliver.ratelimit import TELEGRAM_LIMITS, PlatformLimiter
from bot.core.deliver.render import TelegramText, split_plain, telegram_reply, tg_escape
from bot.core.followup import resolve_followup
from bot.core.models import TOPICS, Answer, Button, Mode, Reply, Target
from bot.core.service import MAX_QUESTION_CHARS, MEMORY_SECONDS

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
EDIT_INTERVAL = 1.5  # faster edits of one message earn long 429s
DRAFT_INTERVAL = 0.3
QUESTIONS_PER_WINDOW, QUESTION_WINDOW = 5, 30.0
ACTIONS_PER_WINDOW, ACTION_WINDOW = 20, 60.0
ADMIN_CACHE_SECONDS = 60.0
MAX_REPLY_WAIT = 60.0  # a reply that must wait longer than this for a 429 is dropped
SEND_ATTEMPTS = 4
SHUTDOWN_GRACE = 2.5  # in-flight replies get this long to finish after SIGTERM
ANONYMOUS_ADMIN_BOT = 1087968824  # "GroupAnonymousBot": posts of anonymous group admins
ALLOWED_UPDATES = ("message", "channel_post", "callback_query", "my_chat_member")
GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP, ChatType.CHANNEL})
ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})
GONE_STATUSES = frozenset({ChatMemberStatus.BANNED, ChatMemberStatus.LEFT})
SELECTED = "✓ "
_DEEP_LINK_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TIME_RE = re.compile(r"^(\d{1,2})(\d{2})$")

Ctx = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Ctx], Coroutine[Any, Any, None]]
TgApp = Application[Any, Any, Any, Any, Any, Any]

# (command, English description, Korean description) for the command menu.
COMMAND_MENU: tuple[tuple[str, str, str], ...] = (
    ("start", "Welcome and what I can do", "시작하기와 사용법"),
    ("help", "What I can do", "도움말"),
    ("ask", "Ask about national AI efforts", "국가 AI 정책에 대해 질문하기"),
    ("latest", "The newest stories, e.g. /latest KR", "최신 소식 (예: /latest KR)"),
    ("subscribe", "Alerts for countries or topics", "국가·주제별 알림 받기"),
    ("unsubscribe", "Stop alerts", "알림 해지"),
    ("subscriptions", "This chat's subscriptions", "이 대화방의 구독 목록"),
    ("digest", "A digest of the last day", "최근 하루 소식 요약"),
    ("why", "Why a story was or was not sent here", "알림이 왔거나 오지 않은 이유"),
)
COMMANDS = tuple(name for name, _, _ in COMMAND_MENU)

ONLY_ADMINS = "Only this chat's admins can change its alerts."
TEXT_ONLY = "I read text only: ask me a question in words, or send /help."
STALE_BUTTON = "This button has expired. Send /subscribe again."


def retry_seconds(exc: RetryAfter) -> float:
    """`retry_after` as seconds, whichever type this PTB version hands out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def target_of(chat_id: int | str, message: Message | None) -> Target:
    """Forum topics are separate targets; everything else in a chat shares one."""
    thread = ""
    if message is not None and message.is_topic_message and message.message_thread_id:
        thread = str(message.message_thread_id)
    return Target(platform=PLATFORM, chat_id=str(chat_id), thread_id=thread)


def deep_link_args(payload: str) -> str | None:
    """`sub_KR_JP_topic-compute_kw-HyperCLOVA_digest-0900` as /subscribe arguments."""
    if not _DEEP_LINK_RE.match(payload) or not payload.lower().startswith("sub_"):
        return None
    words: list[str] = []
    for token in payload[4:].split("_"):
        if not token:
            continue
        low = token.lower()
        if low.startswith("topic-"):
            words.append("topic:" + token[6:])
        elif low.startswith("kw-"):
            words.append("kw:" + token[3:])
        elif low.startswith("digest-"):
            m = _TIME_RE.match(token[7:])
            words.append(f"digest@{m.group(1)}:{m.group(2)}" if m else "digest@" + token[7:])
        else:
            words.append(token)
    return " ".join(words) or None


class RateWindow:
    """At most `count` events per key in any `seconds`; says once per window when over."""

    def __init__(self, count: int, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.count = count
        self.seconds = seconds
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) >= self.count:
            return False
        hits.append(now)
        if len(self._hits) > 10_000:
            self._sweep(now)
        return True

    def retry_in(self, key: str) -> float:
        hits = self._hits.get(key)
        return max(0.0, hits[0] + self.seconds - self.clock()) if hits else 0.0

    def first_refusal(self, key: str) -> bool:
        """True for the first refused event of a burst, so the notice is sent only once."""
        now = self.clock()
        if now - self._warned.get(key, -1e18) < self.seconds:
            return False
        self._warned[key] = now
        return True

    def _sweep(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.seconds]:
            del self._hits[key]
            self._warned.pop(key, None)


class KeyedLocks:
    """One lock per chat, so replies in a chat keep their order while chats run side by side."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass
class _Sent:
    """What a streamed answer has shown so far."""

    message_id: int | None = None
    last_change: float = -1e18
    paused_until: float = -1e18
    shown: str = ""


class TelegramBot:
    """The interactive side: handlers for every command, buttons and membership changes."""

    def __init__(
        self,
        app: App,
        *,
        limiter: PlatformLimiter | None = None,
        webhook_listen: tuple[str, int] | None = None,
        poll_timeout: float = 10.0,
    ) -> None:
        settings = app.settings
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.app = app
        self.service = app.service
        self.store = app.store
        self.settings = settings
        # not `limiter or ...`: a limiter with no buckets yet is falsy (it has __len__)
        self.limiter = limiter if limiter is not None else PlatformLimiter(TELEGRAM_LIMITS)
        self.poll_timeout = poll_timeout
        self.webhook_url = settings.telegram_webhook_url
        self.webhook_listen = webhook_listen
        self.questions = RateWindow(QUESTIONS_PER_WINDOW, QUESTION_WINDOW)
        self.actions = RateWindow(ACTIONS_PER_WINDOW, ACTION_WINDOW)
        self.started_at = time.time()
        self.handled = 0
        self._locks = KeyedLocks()
        self._admins: dict[tuple[int, int], tuple[float, bool]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.drafts_work = True
        self._webhook: _WebhookServer | None = None
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_bot_token.get_secret_value())
            .concurrent_updates(64)
            .job_queue(None)
            .connection_pool_size(64)
            .get_updates_read_timeout(poll_timeout + 10)
        )
        bases = api_base_urls(settings.telegram_api_base_url)
        if bases is not None:
            builder = builder.base_url(bases[0]).base_file_url(bases[1])
        self.application: TgApp = builder.build()
        self._add_handlers()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """getMe, the command menu, then long polling (or the webhook when one is configured)."""
        for noisy in ("httpx", "httpcore"):  # their INFO lines carry the bot token
            logger = logging.getLogger(noisy)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        application = self.application
        try:
            await application.initialize()
            await self._register_commands()
            await application.start()
            if self.webhook_url:
                await self._start_webhook(self.webhook_url)
            else:
                assert application.updater is not None
                await application.updater.start_polling(
                    poll_interval=0.0,
                    timeout=timedelta(seconds=self.poll_timeout),
                    allowed_updates=list(ALLOWED_UPDATES),
                    error_callback=self._on_polling_error,
                )
        except BaseException:
            await self._shutdown_quietly()
            raise
        log.info(
            "telegram adapter started",
            extra={
                "bot": application.bot.username,
                "mode": "webhook" if self.webhook_url else "polling",
            },
        )

    async def stop(self) -> None:
        """Stop taking updates, give replies under way a moment, then close the client."""
        self._stopping = True
        application = self.application
        updater = application.updater
        if updater is not None and updater.running:
            with contextlib.suppress(Exception):
                await updater.stop()
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            if late:
                log.warning("replies cut short at shutdown", extra={"count": len(late)})
                await asyncio.wait(late, timeout=0.5)
        await self._shutdown_quietly()
        log.info("telegram adapter stopped")

    async def _shutdown_quietly(self) -> None:
        application = self.application
        if application.running:
            with contextlib.suppress(Exception):
                await application.stop()
        with contextlib.suppress(Exception):
            await application.shutdown()

    async def _register_commands(self) -> None:
        bot = self.application.bot
        english = [BotCommand(name, en) for name, en, _ in COMMAND_MENU]
        korean = [BotCommand(name, ko) for name, _, ko in COMMAND_MENU]
        try:
            await bot.set_my_commands(english)
            await bot.set_my_commands(korean, language_code="ko")
        except TelegramError as exc:  # the menu is a convenience; commands work without it
            log.warning("setMyCommands failed", extra={"error": type(exc).__name__})

    async def _start_webhook(self, url: str) -> None:
        parts = urlsplit(url)
        path = parts.path or "/"
        host, port = self.webhook_listen or ("0.0.0.0", parts.port or 8443)
        secret = secrets.token_urlsafe(32)
        server = _WebhookServer(self.application, path, secret)
        await server.start(host, port)
        self._webhook = server
        await self.application.bot.set_webhook(
            url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
        )

    @property
    def webhook_port(self) -> int | None:
        return self._webhook.port if self._webhook else None

    def _on_polling_error(self, exc: TelegramError) -> None:
        """getUpdates trouble (429, 5xx, network): PTB retries by itself; note it briefly."""
        log.warning("telegram polling error", extra={"error": type(exc).__name__})

    # --- wiring -----------------------------------------------------------------------------
    def _add_handlers(self) -> None:
        application = self.application
        posts = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
        commands: dict[str, Handler] = {
            "start": self._on_start,
            "help": self._on_help,
            "ask": self._on_ask,
            "latest": self._on_latest,
            "subscribe": self._on_subscribe,
            "unsubscribe": self._on_unsubscribe,
            "subscriptions": self._on_subscriptions,
            "digest": self._on_digest,
            "why": self._on_why,
            "status": self._on_status,
        }
        for name, handler in commands.items():
            application.add_handler(CommandHandler(name, self._guarded(handler), filters=posts))
        application.add_handler(CallbackQueryHandler(self._guarded(self._on_button)))
        application.add_handler(
            ChatMemberHandler(self._guarded(self._on_membership), ChatMemberHandler.MY_CHAT_MEMBER)
        )
        application.add_handler(
            MessageHandler(filters.StatusUpdate.MIGRATE, self._guarded(self._on_migrate))
        )
        application.add_handler(
            MessageHandler(filters.COMMAND & posts, self._guarded(self._on_unknown_command))
        )
        application.add_handler(
            MessageHandler(
                filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE,
                self._guarded(self._on_text),
            )
        )
        application.add_handler(
            MessageHandler(
                filters.ChatType.PRIVATE
                & filters.UpdateType.MESSAGE
                & ~filters.TEXT
                & ~filters.StatusUpdate.ALL,
                self._guarded(self._on_other),
            )
        )
        application.add_error_handler(self._on_error)

    def _guarded(self, handler: Handler) -> Handler:
        """Track the task for shutdown and keep one chat's updates in order."""

        async def run(update: Update, context: Ctx) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                chat = update.effective_chat
                key = str(chat.id) if chat is not None else f"u{update.update_id}"
                async with self._locks.hold(key):
                    self.handled += 1
                    await handler(update, context)
            finally:
                if task is not None:
                    self._inflight.discard(task)

        return run

    # --- commands ---------------------------------------------------------------------------
    async def _on_start(self, update: Update, context: Ctx) -> None:
        message, target = self._where(update)
        if message is None:
            return
        subs = self.store.subscriptions.for_target(target)
        resumed = bool(subs) and subs[0].paused
        if resumed:
            self.store.subscriptions.set_paused(target, False)
        payload = context.args[0] if context.args else ""
        if payload:
            args = deep_link_args(payload)
            if args is not None:
                if not await self._may_manage(update):
                    await self._reply(update, Reply(text=ONLY_ADMINS))
                    return
                await self._subscribe_with(update, target, args)
                return
        help_reply = self.service.help()
        welcome = "Welcome to Sovereign Watch!"
        if resumed:
            welcome += " Alerts for this chat are on again."
        body = f"{welcome}\n\n{help_reply.text}"
        await self._reply(update, Reply(text=body, title=help_reply.title))

    async def _on_help(self, update: Update, context: Ctx) -> None:
        await self._reply(update, self.service.help())

    async def _on_ask(self, update: Update, context: Ctx) -> None:
        message, _ = self._where(update)
        if message is None:
            return
        await self._question(update, _arguments(message))

    async def _on_latest(self, update: Update, context: Ctx) -> None:
        if await self._over_action_limit(update):
            return
        await self._reply(update, self.service.latest(" ".join(context.args or [])))

    async def _managed_target(self, update: Update) -> tuple[Message, Target] | None:
        """The message and target of a subscription command, or None when it must not run
        (over the action limit, no message, or a group member who is not an admin: told)."""
        if await self._over_action_limit(update):
            return None
        message, target = self._where(update)
        if message is None:
            return None
        if not await self._may_manage(update):
            await self._reply(update, Reply(text=ONLY_ADMINS))
            return None
        return message, target

    async def _on_subscribe(self, update: Update, context: Ctx) -> None:
        where = await self._managed_target(update)
        if where is None:
            return
        message, target = where
        args = _arguments(message)
        if args.strip():
            await self._subscribe_with(update, target, args)
            return
        prompt = self.service.subscribe(target, "")
        parts = telegram_reply(replace(prompt, buttons=()))
        await self._send(
            target,
            update,
            parts,
            markup=subscribe_keyboard(prompt.buttons),
        )

    async def _subscribe_with(self, update: Update, target: Target, args: str) -> None:
        reply = self.service.subscribe(target, args)
        self._note_chat_type(update, target)
        await self._reply(update, reply)

    async def _on_unsubscribe(self, update: Update, context: Ctx) -> None:
        where = await self._managed_target(update)
        if where is None:
            return
        message, target = where
        await self._reply(update, self.service.unsubscribe(target, _arguments(message)))

    async def _on_subscriptions(self, update: Update, context: Ctx) -> None:
        _, target = self._where(update)
        await self._reply(update, self.service.subscriptions(target))

    async def _on_digest(self, update: Update, context: Ctx) -> None:
        if await self._over_action_limit(update):
            return
        _, target = self._where(update)
        await self._reply(update, self.service.digest(target))

    async def _on_why(self, update: Update, context: Ctx) -> None:
        message, target = self._where(update)
        if message is None:
            return
        link = _arguments(message).strip()
        replied = message.reply_to_message
        if not link and replied is not None:
            found = self.service.why_message(target, str(replied.message_id))
            if found is not None:
                await self._reply(update, found)
                return
            link = _first_link(replied) or ""
        await self._reply(update, self.service.why(target, link))

    async def _on_status(self, update: Update, context: Ctx) -> None:
        _, target = self._where(update)
        user = update.effective_user
        chat = update.effective_chat
        uid = str(user.id) if user is not None else ""
        owners = self.settings.owner_ids
        if not uid or not (
            self.service.is_owner(target, uid) or uid in owners or f"telegram:{uid}" in owners
        ):
            if chat is not None and chat.type == ChatType.PRIVATE:
                await self._reply(update, Reply(text="/status is for the bot's operators."))
            return
        await self._reply(update, self._status_reply())

    def _status_reply(self) -> Reply:
        """The service's operator status plus what only this adapter knows."""
        core = self.service.status()
        uptime = int(time.time() - self.started_at)
        lines = [
            core.text,
            f"telegram: {'webhook' if self.webhook_url else 'long polling'}, "
            f"up {uptime // 3600}h {uptime % 3600 // 60}m, updates handled: {self.handled}",
            f"answers: {'llm' if self.app.llm is not None else 'extractive'}, "
            f"articles: {self.store.articles.count()}, version {__version__}",
        ]
        return Reply(text="\n".join(lines), title=core.title or "Status")

    async def _on_unknown_command(self, update: Update, context: Ctx) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        entity = next(
            (e for e in message.entities if e.type == MessageEntityType.BOT_COMMAND), None
        )
        if entity is None or entity.offset != 0:
            return
        word = message.parse_entity(entity)
        name, _, addressee = word[1:].partition("@")
        mine = (self.application.bot.username or "").lower()
        if addressee and addressee.lower() != mine:
            return  # another bot's command
        chat = message.chat
        if chat.type != ChatType.PRIVATE and not addressee:
            return  # in a group an unaddressed /command may be for another bot
        if name.lower() in COMMANDS or name.lower() == "status":
            return  # handled above (e.g. a caption); nothing more to say
        await self._reply(
            update,
            Reply(text=f"I don't know the command /{name[:32]}. Send /help to see what I can do."),
        )

    # --- plain messages ---------------------------------------------------------------------
    async def _on_text(self, update: Update, context: Ctx) -> None:
        message, target = self._where(update)
        if message is None or message.text is None:
            return
        if message.chat.type == ChatType.PRIVATE:
            if message.text.lstrip().startswith("/"):  # e.g. /도움말: no command entity
                reply = await self.service.handle_text(target, self._user_key(update), message.text)
                if reply is not None:
                    await self._reply(update, reply)
                return
            await self._question(update, message.text)
            return
        question = self._addressed_question(message)
        if question is not None:
            await self._question(update, question)

    def _addressed_question(self, message: Message) -> str | None:
        """In a group, the question when the bot is mentioned or replied to; else None."""
        bot = self.application.bot
        mine = "@" + (bot.username or "").lower()
        body = message.text or ""
        addressed = False
        cuts: list[tuple[int, int]] = []
        for entity, value in message.parse_entities(
            [MessageEntityType.MENTION, MessageEntityType.TEXT_MENTION]
        ).items():
            is_me = (entity.type == MessageEntityType.MENTION and value.lower() == mine) or (
                entity.user is not None and entity.user.id == bot.id
            )
            if is_me:
                addressed = True
                cuts.append(_span(body, entity))
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            addressed = True
        if not addressed:
            return None
        for start, end in sorted(cuts, reverse=True):
            body = body[:start] + body[end:]
        return " ".join(body.split())

    async def _on_other(self, update: Update, context: Ctx) -> None:
        """Stickers, photos, voice in a private chat get a hint; groups are left alone."""
        if await self._over_action_limit(update, notice=False):
            return
        await self._reply(update, Reply(text=TEXT_ONLY))

    # --- questions --------------------------------------------------------------------------
    async def _question(self, update: Update, question: str) -> None:
        message, target = self._where(update)
        if message is None:
            return
        user = self._user_key(update)
        if not self.questions.allow(user):
            if self.questions.first_refusal(user):
                wait = max(1, round(self.questions.retry_in(user)))
                await self._reply(
                    update,
                    Reply(
                        text="You are asking faster than I can answer well. "
                        f"Please wait about {wait} s; I will skip questions until then."
                    ),
                )
            return
        if self.app.llm is not None and question.strip():
            await self._stream_answer(update, target, user, question)
            return
        reply = await self.service.ask(target, user, question)
        await self._reply(update, reply)

    async def _stream_answer(self, update: Update, target: Target, user: str, raw: str) -> None:
        """Show the model's words as they come, then the checked answer with its sources."""
        llm = self.app.llm
        assert llm is not None
        question = raw.strip()
        lang = question_language(question)
        note = ""
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            note = text("cut", lang).format(n=MAX_QUESTION_CHARS)
        memory = f"{target.key}:{user}"
        history = self.store.conversations.get(memory, MEMORY_SECONDS)
        effective = resolve_followup(question, history, self.app.gazetteer)
        private = update.effective_chat is not None and (
            update.effective_chat.type == ChatType.PRIVATE
        )
        view: _StreamView = (
            _DraftView(self, target, update)
            if private and self.drafts_work
            else _EditView(self, target, update)
        )
        stream = llm.stream(effective, history)
        shown = ""
        try:
            async for delta in stream:
                shown += delta
                await view.show(shown)
        except Exception:  # the stream already turns endpoint trouble into a result
            log.exception("streaming an answer failed")
        finally:
            await stream.aclose()
        result = stream.result or self.app.service.extractive.answer(effective)
        turn = {"q": effective, "a": result.answer[:300], "t": str(time.time())}
        try:
            self.store.conversations.put(memory, [*history[-4:], turn])
        except Exception as exc:  # a full or read-only store must not stop the answer
            log.warning("conversation memory not saved", extra={"reason": str(exc)})
        await view.finish(_answer_reply(result, question, note))

    # --- buttons ----------------------------------------------------------------------------
    async def _on_button(self, update: Update, context: Ctx) -> None:
        query = update.callback_query
        if query is None:
            return
        data = query.data or ""
        message = query.message if isinstance(query.message, Message) else None
        if message is None or len(data.encode()) > MAX_CALLBACK_BYTES:
            await _answer_query(update, STALE_BUTTON)
            return
        target = target_of(message.chat.id, message)
        kind = data.split(":", 1)[0]
        if kind not in ("k", "sub", "mute"):
            await _answer_query(update, "That button is not one of mine any more.")
            return
        if not self.actions.allow(self._user_key(update)):
            await _answer_query(update, "Slow down a little, please.")
            return
        if not await self._may_manage(update):
            await _answer_query(update, ONLY_ADMINS, alert=True)
            return
        if kind == "k":
            await self._keyboard_press(update, message, target, data)
        elif kind == "sub":
            await self._one_tap_subscribe(update, target, data)
        else:
            await self._mute(update, target, data)

    async def _keyboard_press(
        self, update: Update, message: Message, target: Target, data: str
    ) -> None:
        markup = message.reply_markup
        present = _keyboard_data(markup)
        if data not in present:
            await _answer_query(update, STALE_BUTTON)
            return
        chosen = _chosen(markup)
        action = data[2:]
        if action == "x":
            await self._edit_text(target, update, message.message_id, "Cancelled.", None)
            await _answer_query(update, "Cancelled.")
            return
        if action == "ok":
            countries = [c[2:] for c in chosen if c.startswith("c:")]
            topics = [t[2:] for t in chosen if t.startswith("t:")]
            mode = next((m[2:] for m in chosen if m.startswith("m:")), Mode.INSTANT.value)
            if not countries and not topics:
                await _answer_query(
                    update, "Pick a country or a topic first (or send /subscribe all)."
                )
                return
            args = " ".join([*countries, *(f"topic:{t}" for t in topics), mode])
            reply = self.service.subscribe(target, args)
            self._note_chat_type(update, target)
            parts = telegram_reply(reply)
            await self._edit_text(target, update, message.message_id, parts[0].html, None)
            await _answer_query(update, "Saved.")
            if len(parts) > 1:
                await self._send(target, update, parts[1:], quote=False)
            return
        toggled = _toggle(markup, data)
        prompt = self.service.subscribe(target, "")
        body = telegram_reply(replace(prompt, buttons=()))[0].html
        await self._edit_text(target, update, message.message_id, body, toggled)
        await _answer_query(update)  # after the edit, so a quick second tap sees the tick

    async def _one_tap_subscribe(self, update: Update, target: Target, data: str) -> None:
        value = data[4:]
        topic = value.startswith("topic:") and value[6:] in TOPICS
        if not topic and value not in self.app.gazetteer.country_codes():
            await _answer_query(update, STALE_BUTTON)
            return
        reply = self.service.subscribe(target, value)
        self._note_chat_type(update, target)
        await _answer_query(update, "Saved.")
        await self._reply(update, reply, quote=False)

    async def _mute(self, update: Update, target: Target, data: str) -> None:
        _, kind, value = [*data.split(":", 2), "", ""][:3]
        kind = {"c": "country", "t": "topic"}.get(kind, kind)
        valid = (kind == "country" and value in self.app.gazetteer.country_codes()) or (
            kind == "topic" and value in TOPICS
        )
        if not valid:
            await _answer_query(update, STALE_BUTTON)
            return
        summary = self.service.mute(target, kind, value)
        await _answer_query(update, summary.text[:190])
        await self._reply(update, summary, quote=False)

    # --- membership -------------------------------------------------------------------------
    async def _on_membership(self, update: Update, context: Ctx) -> None:
        change = update.my_chat_member
        if change is None:
            return
        chat = change.chat
        status = change.new_chat_member.status
        if status in GONE_STATUSES:
            reason = "blocked" if chat.type == ChatType.PRIVATE else str(status)
            self._pause_chat(str(chat.id), reason)
        elif status in (
            ChatMemberStatus.MEMBER,
            ChatMemberStatus.ADMINISTRATOR,
            ChatMemberStatus.OWNER,
        ) or (
            status == ChatMemberStatus.RESTRICTED
            and getattr(change.new_chat_member, "is_member", False)
        ):
            self._resume_chat(str(chat.id))

    async def _on_migrate(self, update: Update, context: Ctx) -> None:
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id:
            self.migrate(str(message.chat.id), str(message.migrate_to_chat_id))
        elif message.migrate_from_chat_id:
            self.migrate(str(message.migrate_from_chat_id), str(message.chat.id))

    def _chat_targets(self, chat_id: str) -> list[Target]:
        found = {
            s.target
            for s in self.store.subscriptions.all()
            if s.target.platform == PLATFORM and s.target.chat_id == chat_id
        }
        return sorted(found, key=lambda t: t.key)

    def _pause_chat(self, chat_id: str, reason: str) -> None:
        targets = self._chat_targets(chat_id)
        for target in targets:
            self.store.subscriptions.set_paused(target, True, reason)
        if targets:
            log.info("telegram chat paused", extra={"chat": chat_id, "reason": reason})

    def _resume_chat(self, chat_id: str) -> None:
        targets = self._chat_targets(chat_id)
        for target in targets:
            self.store.subscriptions.set_paused(target, False)
        if targets:
            log.info("telegram chat resumed", extra={"chat": chat_id})

    def migrate(self, old_chat_id: str, new_chat_id: str) -> None:
        """A group became a supergroup: its subscriptions follow it to the new id."""
        repo = self.store.subscriptions
        old = repo.target_id(Target(PLATFORM, old_chat_id, ""), create=False)
        if old is None:
            return
        repo.migrate_target(old, new_chat_id)
        log.info("telegram group migrated", extra={"chat": old_chat_id, "to": new_chat_id})

    # --- permissions and limits -------------------------------------------------------------
    async def _may_manage(self, update: Update) -> bool:
        """Private chats and channels: yes; groups: only administrators (cached briefly)."""
        chat = update.effective_chat
        if chat is None:
            return False
        if chat.type in (ChatType.PRIVATE, ChatType.CHANNEL):
            return True
        message = update.effective_message
        if message is not None and message.sender_chat is not None:
            return message.sender_chat.id == chat.id  # an anonymous admin posting as the group
        user = update.effective_user
        if user is None or user.id == ANONYMOUS_ADMIN_BOT:
            return user is not None
        key = (chat.id, user.id)
        now = time.monotonic()
        cached = self._admins.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            member = await self.application.bot.get_chat_member(chat.id, user.id)
            allowed = member.status in ADMIN_STATUSES
        except TelegramError as exc:
            log.warning("admin check failed", extra={"error": type(exc).__name__})
            return False
        if len(self._admins) > 10_000:
            self._admins = {k: v for k, v in self._admins.items() if v[0] > now}
        self._admins[key] = (now + ADMIN_CACHE_SECONDS, allowed)
        return allowed

    async def _over_action_limit(self, update: Update, *, notice: bool = True) -> bool:
        user = self._user_key(update)
        if self.actions.allow(user):
            return False
        if notice and self.actions.first_refusal(user):
            await self._reply(update, Reply(text="That is a lot of commands; give me a minute."))
        return True

    def _note_chat_type(self, update: Update, target: Target) -> None:
        chat = update.effective_chat
        if chat is not None and self.store.subscriptions.count_for(target):
            self.store.subscriptions.set_chat_type(target, str(chat.type))

    # --- sending ----------------------------------------------------------------------------
    def _where(self, update: Update) -> tuple[Message | None, Target]:
        message = update.effective_message
        chat = update.effective_chat
        chat_id = chat.id if chat is not None else 0
        return message, target_of(chat_id, message)

    @staticmethod
    def _user_key(update: Update) -> str:
        user = update.effective_user
        if user is not None:
            return str(user.id)
        chat = update.effective_chat
        return f"chat{chat.id}" if chat is not None else "unknown"

    async def _reply(self, update: Update, reply: Reply, *, quote: bool = True) -> None:
        _, target = self._where(update)
        markup = inline_keyboard(reply.buttons)
        parts = telegram_reply(replace(reply, buttons=()))
        await self._send(target, update, parts, markup=markup, quote=quote)

    async def _send(
        self,
        target: Target,
        update: Update,
        parts: Sequence[TelegramText],
        *,
        markup: InlineKeyboardMarkup | None = None,
        quote: bool = True,
    ) -> list[Message]:
        """Send parts in order (keyboard on the last); in groups the first answers the asker."""
        message = update.effective_message
        chat = update.effective_chat
        reply_to = None
        if quote and message is not None and chat is not None and chat.type in GROUP_TYPES:
            reply_to = message.message_id
        sent: list[Message] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            got = await self.send_html(
                target,
                _is_group(update),
                part.html,
                markup=markup if last else None,
                reply_to=reply_to if i == 0 else None,
            )
            if got is None:
                break
            sent.append(got)
        return sent

    async def send_html(
        self,
        target: Target,
        group: bool,
        html_text: str,
        *,
        markup: InlineKeyboardMarkup | None = None,
        reply_to: int | None = None,
    ) -> Message | None:
        """One paced sendMessage; waits out a 429 (bounded), follows a group upgrade."""
        bot = self.application.bot
        for attempt in range(SEND_ATTEMPTS):
            keys = self.limiter.keys(target.chat_id, group=group)
            permit = await self.limiter.acquire(keys)
            try:
                return await bot.send_message(
                    chat_id=int(target.chat_id),
                    text=html_text,
                    parse_mode=ParseMode.HTML,
                    message_thread_id=int(target.thread_id) if target.thread_id else None,
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    reply_parameters=(
                        ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                        if reply_to
                        else None
                    ),
                )
            except RetryAfter as exc:
                if not self._wait_out(keys, retry_seconds(exc)):
                    return None
            except ChatMigrated as exc:
                self.migrate(target.chat_id, str(exc.new_chat_id))
                target = replace(target, chat_id=str(exc.new_chat_id))
            except Forbidden as exc:
                self._pause_chat(target.chat_id, "blocked" if not group else "kicked")
                log.info("reply not delivered", extra={"error": exc.message[:120]})
                return None
            except TimedOut:
                log.warning("reply timed out", extra={"chat": target.chat_id})
                return None  # it may have arrived; a duplicate answer is worse than none
            except NetworkError as exc:
                if isinstance(exc, BadRequest):
                    log.warning("reply rejected", extra={"error": exc.message[:200]})
                    return None
                log.warning("reply failed, retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(0.5 * (attempt + 1))
            finally:
                permit.done()
        return None

    async def edit_html(
        self,
        target: Target,
        group: bool,
        message_id: int,
        html_text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        wait: bool = True,
    ) -> bool | float:
        """One paced edit. Returns True when done (or nothing changed), False when given up,
        or, with wait=False, the seconds of a 429 so the caller can pause its own edits."""
        bot = self.application.bot
        keys = self.limiter.keys(target.chat_id, group=group, edit=True)
        for _ in range(SEND_ATTEMPTS):
            permit = await self.limiter.acquire(keys)
            try:
                await bot.edit_message_text(
                    chat_id=int(target.chat_id),
                    message_id=message_id,
                    text=html_text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                return True
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                if not wait:
                    self.limiter.pause(keys, seconds)
                    return seconds
                if not self._wait_out(keys, seconds):
                    return False
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    return True
                log.warning("edit rejected", extra={"error": exc.message[:200]})
                return False
            except TelegramError as exc:
                log.warning("edit failed", extra={"error": type(exc).__name__})
                return False
            finally:
                permit.done()
        return False

    async def _edit_text(
        self,
        target: Target,
        update: Update,
        message_id: int,
        html_text: str,
        markup: InlineKeyboardMarkup | None,
    ) -> None:
        await self.edit_html(target, _is_group(update), message_id, html_text, markup)

    def _wait_out(self, keys: list[str], seconds: float) -> bool:
        """Pause this chat's buckets for a 429; False when the wait is not worth it."""
        self.limiter.pause(keys, seconds)
        if self._stopping or seconds > MAX_REPLY_WAIT:
            log.warning("reply dropped after 429", extra={"retry_after": seconds})
            return False
        return True

    def ready_now(self, keys: Sequence[str]) -> bool:
        """Whether a send to these buckets would go out at once (streaming skips, never waits)."""
        limiter = self.limiter
        now = limiter.clock()
        for bucket in (limiter.shared, *(limiter.bucket(k) for k in keys)):
            when = bucket.ready_at(now)
            if when is None or when > now:
                return False
        return True

    async def send_draft(self, target: Target, draft_id: int, html_text: str) -> float:
        """One sendMessageDraft; returns a 429's seconds, else 0. Stops drafts if unsupported."""
        try:
            await self.application.bot.send_message_draft(
                chat_id=int(target.chat_id),
                draft_id=draft_id,
                text=html_text,
                parse_mode=ParseMode.HTML,
                message_thread_id=int(target.thread_id) if target.thread_id else None,
            )
        except RetryAfter as exc:
            return retry_seconds(exc)
        except BadRequest as exc:
            log.warning("drafts unavailable; streaming by edits", extra={"error": exc.message})
            self.drafts_work = False
        except TelegramError as exc:
            log.info("draft failed", extra={"error": type(exc).__name__})
        return 0.0

    # --- errors -----------------------------------------------------------------------------
    async def _on_error(self, update: object, context: Ctx) -> None:
        """The one error handler: log the failure; the user sees an apology, never a trace."""
        error = context.error
        log.error(
            "telegram update failed",
            extra={
                "error": type(error).__name__,
                "update_id": getattr(update, "update_id", None),
            },
            exc_info=error,
        )
        if not isinstance(update, Update) or isinstance(error, TelegramError):
            return
        if update.effective_message is None or update.callback_query is not None:
            if update.callback_query is not None:
                await _answer_query(update, "Something went wrong; please try again.")
            return
        with contextlib.suppress(Exception):
            await self._reply(
                update, Reply(text="Sorry, something went wrong on my side. Please try again.")
            )


class _StreamView:
    """Where a streamed answer appears while it is written."""

    def __init__(self, bot: TelegramBot, target: Target, update: Update) -> None:
        self.bot = bot
        self.target = target
        self.update = update
        self.state = _Sent()

    async def show(self, partial: str) -> None:
        raise NotImplementedError

    async def finish(self, reply: Reply) -> None:
        raise NotImplementedError


class _DraftView(_StreamView):
    """Private chats: an animated draft, then the final message (drafts are never stored)."""

    def __init__(self, bot: TelegramBot, target: Target, update: Update) -> None:
        super().__init__(bot, target, update)
        self.draft_id = random.randint(1, 2**31 - 1)

    async def show(self, partial: str) -> None:
        state = self.state
        now = time.monotonic()
        if now < state.paused_until or now - state.last_change < DRAFT_INTERVAL:
            return
        if not self.bot.drafts_work:
            return
        state.last_change = now
        wait = await self.bot.send_draft(self.target, self.draft_id, preview_html(partial))
        if wait:
            state.paused_until = time.monotonic() + wait

    async def finish(self, reply: Reply) -> None:
        await self.bot._reply(self.update, reply)


class _EditView(_StreamView):
    """Groups: one message, edited at most every EDIT_INTERVAL, paused during any 429."""

    async def show(self, partial: str) -> None:
        state = self.state
        bot = self.bot
        now = time.monotonic()
        if now < state.paused_until or now - state.last_change < EDIT_INTERVAL:
            return
        group = _is_group(self.update)
        body = preview_html(partial) + " …"
        if state.message_id is None:
            if not bot.ready_now(bot.limiter.keys(self.target.chat_id, group=group)):
                return
            message = self.update.effective_message
            sent = await bot.send_html(
                self.target,
                group,
                body,
                reply_to=message.message_id if message is not None and group else None,
            )
            if sent is not None:
                state.message_id = sent.message_id
                state.last_change = time.monotonic()
                state.shown = body
            return
        if body == state.shown or not bot.ready_now(
            bot.limiter.keys(self.target.chat_id, group=group, edit=True)
        ):
            return
        outcome = await bot.edit_html(self.target, group, state.message_id, body, None, wait=False)
        state.last_change = time.monotonic()
        state.shown = body
        if not isinstance(outcome, bool):
            state.paused_until = time.monotonic() + outcome

    async def finish(self, reply: Reply) -> None:
        state = self.state
        if state.message_id is None:
            await self.bot._reply(self.update, reply)
            return
        markup = inline_keyboard(reply.buttons)
        parts = telegram_reply(replace(reply, buttons=()))
        wait = max(state.paused_until, state.last_change + EDIT_INTERVAL) - time.monotonic()
        if wait > 0:  # the limiter also holds the edit while the chat is paused by a 429
            await asyncio.sleep(min(wait, MAX_REPLY_WAIT))
        group = _is_group(self.update)
        await self.bot.edit_html(
            self.target,
            group,
            state.message_id,
            parts[0].html,
            markup if len(parts) == 1 else None,
        )
        if len(parts) > 1:
            await self.bot._send(self.target, self.update, parts[1:], markup=markup, quote=False)


class _WebhookServer:
    """Receives updates over HTTPS (behind a proxy) and checks Telegram's secret header."""

    MAX_BODY = 1 << 20

    def __init__(self, application: TgApp, path: str, secret: str) -> None:
        self.application = application
        self.path = path
        self.secret = secret
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=self.MAX_BODY)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            payload = await request.json()
            update = Update.de_json(payload, self.application.bot)
        except Exception:  # garbage from whoever found the URL: refuse, never crash
            return web.Response(status=400)
        if update is None:
            return web.Response(status=400)
        await self.application.update_queue.put(update)
        return web.Response(status=200)


# --- small helpers --------------------------------------------------------------------------
def _is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type in GROUP_TYPES


def _arguments(message: Message) -> str:
    """Everything after the command word, with its spacing (shlex-quoted keywords survive)."""
    parts = (message.text or message.caption or "").split(None, 1)
    return parts[1] if len(parts) > 1 else ""


def _span(body: str, entity: MessageEntity) -> tuple[int, int]:
    """An entity's span in Python characters (Telegram counts UTF-16 units)."""
    encoded = body.encode("utf-16-le")
    start = len(encoded[: entity.offset * 2].decode("utf-16-le"))
    end = start + len(
        encoded[entity.offset * 2 : (entity.offset + entity.length) * 2].decode("utf-16-le")
    )
    return start, end


def _first_link(message: Message) -> str | None:
    for entity, value in message.parse_entities(
        [MessageEntityType.TEXT_LINK, MessageEntityType.URL]
    ).items():
        return entity.url or value
    return None


async def _answer_query(update: Update, note: str | None = None, *, alert: bool = False) -> None:
    """Every button press gets an answer, even a stale one; a late answer is not an error."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text=note, show_alert=alert)
    except TelegramError as exc:
        log.info("callback answer failed", extra={"error": type(exc).__name__})


def preview_html(partial: str) -> str:
    """A partial answer as safe HTML that fits one message."""
    head = split_plain(partial.strip() or "…", MAX_TEXT - 10)[0]
    return tg_escape(head)


def _answer_reply(result: Answer, question: str, note: str) -> Reply:
    """The final streamed answer, shaped as BotService.ask shapes it."""
    body = result.answer
    if note:
        body = f"{note} {body}"
    if not result.grounded and result.related:
        lines = [text("maybe", question_language(question))]
        lines += [f"• {s.title} ({s.url})" for s in result.related]
        body = body + "\n\n" + "\n".join(lines)
    return Reply(text=body, sources=result.sources, grounded=result.grounded, mode=result.mode)


def inline_keyboard(buttons: Sequence[Button], per_row: int = 3) -> InlineKeyboardMarkup | None:
    usable = [b for b in buttons if 0 < len(b.action.encode()) <= MAX_CALLBACK_BYTES]
    if not usable:
        return None
    rows = [
        [
            InlineKeyboardButton(b.label[:64] or "…", callback_data=b.action)
            for b in usable[i : i + per_row]
        ]
        for i in range(0, len(usable), per_row)
    ]
    return InlineKeyboardMarkup(rows)


def subscribe_keyboard(offered: Sequence[Button]) -> InlineKeyboardMarkup:
    """Countries and topics to tick, instant or a digest, then Save: the choice lives in the
    keyboard itself, so a restart loses nothing and the callback data stays tiny."""
    countries = [
        InlineKeyboardButton(b.label, callback_data=f"k:c:{b.action[4:]}")
        for b in offered
        if b.action.startswith("sub:") and not b.action.startswith("sub:topic:")
    ]
    topics = [
        InlineKeyboardButton(b.action[10:], callback_data=f"k:t:{b.action[10:]}")
        for b in offered
        if b.action.startswith("sub:topic:")
    ]
    rows = [countries[i : i + 4] for i in range(0, len(countries), 4)]
    rows += [topics[i : i + 3] for i in range(0, len(topics), 3)]
    rows.append(
        [
            InlineKeyboardButton(SELECTED + "instant", callback_data="k:m:instant"),
            InlineKeyboardButton("daily digest", callback_data="k:m:digest"),
            InlineKeyboardButton("weekly digest", callback_data="k:m:weekly"),
        ]
    )
    rows.append(
        [
            InlineKeyboardButton("💾 Save", callback_data="k:ok"),
            InlineKeyboardButton("✖ Cancel", callback_data="k:x"),
        ]
    )
    return InlineKeyboardMarkup(rows)


def _keyboard_data(markup: InlineKeyboardMarkup | None) -> set[str]:
    if markup is None:
        return set()
    return {
        str(b.callback_data)
        for row in markup.inline_keyboard
        for b in row
        if isinstance(b.callback_data, str)
    }


def _chosen(markup: InlineKeyboardMarkup | None) -> list[str]:
    """Ticked entries of the subscribe keyboard, as `c:KR`, `t:compute`, `m:digest`."""
    if markup is None:
        return []
    return [
        str(b.callback_data)[2:]
        for row in markup.inline_keyboard
        for b in row
        if isinstance(b.callback_data, str) and b.text.startswith(SELECTED)
    ]


def _toggle(markup: InlineKeyboardMarkup | None, data: str) -> InlineKeyboardMarkup:
    """The keyboard with one entry ticked or unticked (instant, daily, weekly: one of them)."""
    assert markup is not None
    radio = data.startswith("k:m:")
    rows: list[list[InlineKeyboardButton]] = []
    for row in markup.inline_keyboard:
        new_row: list[InlineKeyboardButton] = []
        for b in row:
            label = b.text.removeprefix(SELECTED)
            ticked = b.text.startswith(SELECTED)
            if b.callback_data == data:
                ticked = True if radio else not ticked
            elif radio and isinstance(b.callback_data, str) and b.callback_data.startswith("k:m:"):
                ticked = False
            new_row.append(
                InlineKeyboardButton(
                    (SELECTED if ticked else "") + label, callback_data=b.callback_data
                )
            )
        rows.append(new_row)
    return InlineKeyboardMarkup(rows)


async def run_telegram(
    app: App,
    stop: asyncio.Event,
    *,
    limiter: PlatformLimiter | None = None,
    webhook_listen: tuple[str, int] | None = None,
) -> None:
    """Serve Telegram until `stop` is set; retries start-up while the Bot API is unreachable.

    Pass the delivery worker's Telegram limiter so replies and alerts share one budget.
    """
    bot = TelegramBot(app, limiter=limiter, webhook_listen=webhook_listen)
    try:
        if await _start_with_retries(bot, stop):
            await stop.wait()
    finally:
        await _complete(bot.stop())


async def _start_with_retries(bot: TelegramBot, stop: asyncio.Event) -> bool:
    delay = 1.0
    while not stop.is_set():
        try:
            await bot.start()
            return True
        except InvalidToken:
            log.error("the Telegram bot token was rejected; Telegram stays off")
            return False
        except (NetworkError, OSError) as exc:
            log.warning(
                "telegram not reachable; retrying",
                extra={"error": type(exc).__name__, "retry_in": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 60.0)
    return False


async def _complete(step: Coroutine[Any, Any, None]) -> None:
    """Run a shutdown step to its end even if this task is cancelled meanwhile (`run` cancels
    its tasks as soon as `stop` is set), then let the cancellation through."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
