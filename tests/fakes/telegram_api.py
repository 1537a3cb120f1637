"""A fake Telegram Bot API server on 127.0.0.1 for tests and benchmarks.

The real python-telegram-bot client talks to it over HTTP, so tests exercise the client's own
request encoding, error mapping and polling loop instead of mocks. It enforces the flood limits
Telegram publishes in its Bot FAQ (about 30 messages/s per bot, one message/s in a single chat,
20 messages/min in a group) and answers 429 with `retry_after` as the real service does, so a
benchmark can prove the bot stays inside them. It also validates what Telegram validates
(HTML / MarkdownV2 markup, text length, callback data size) so formatting bugs fail in tests
rather than in production.

Pushing an update applies its platform-side effect: a `my_chat_member` update that kicks the bot
makes later sends answer 403, a `migrate_to_chat_id` message makes sends to the old group answer
400 with `migrate_to_chat_id`.
"""

from __future__ import annotations

import asyncio
import bisect
import html
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer, serve_locally

__all__ = [
    "DEFAULT_TOKEN",
    "ChatConfig",
    "FakeTelegram",
    "Limits",
    "LoggedRequest",
    "fake_telegram",
]

JSON = dict[str, Any]
ChatRef = int | str

DEFAULT_TOKEN = "123456789:AAFakeTokenForLocalTestsOnly_0123456789"
MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

# Form fields that are plain strings; every other field arrives JSON-encoded.
_STRING_FIELDS = frozenset(
    {
        "text",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "secret_token",
        "language_code",
        "action",
        "business_connection_id",
        "ip_address",
        "emoji",
        "caption",
    }
)
_SEND_LIMITED = frozenset({"sendMessage", "editMessageText"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Update kinds Telegram leaves out unless allowed_updates names them.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{5,32}")
_URL_RE = re.compile(r"https?://[^\s<>\"]+")
_BOT_COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
_HTML_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>")
_HTML_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#[xX][0-9A-Fa-f]+);")
_MDV2_NEVER_MARKUP = frozenset("#+-={}.!()]")
_RESTRICTED_FLAGS = (
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_send_messages",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_manage_topics",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_edit_tag",
)
_MDV2_TOGGLES = {"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough"}


@dataclass(frozen=True)
class Limits:
    """Flood limits from Telegram's Bot FAQ; tests tighten or loosen them.

    The per-chat limit applies to every chat ("in a single chat"); groups and supergroups are
    also held to the per-group limit.
    """

    enabled: bool = True
    global_count: int = 30
    global_window: float = 1.0
    chat_count: int = 1
    chat_window: float = 1.0
    group_count: int = 20
    group_window: float = 60.0


@dataclass
class LoggedRequest:
    """One request as the server saw it; `t` is time.monotonic() at arrival."""

    t: float
    method: str
    chat_id: ChatRef | None
    status: int
    outcome: str  # ok | rate_limited | injected | dropped | error | unauthorized | not_found
    params: JSON


@dataclass
class ChatConfig:
    """What the platform knows about a chat: its kind, admins and the bot's standing in it."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    admins: list[int] = field(default_factory=list)
    owner_id: int | None = None
    is_forum: bool = False
    bot_status: str = "member"
    migrated_to: int | None = None


@dataclass
class _Fault:
    method: str
    status: int
    description: str
    parameters: JSON | None
    chat_id: ChatRef | None
    remaining: int
    drop: bool = False
    hang: float = 0.0


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        description: str,
        parameters: JSON | None = None,
        outcome: str = "error",
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters
        self.outcome = outcome


class _ParseError(Exception):
    pass


def _bad(description: str, parameters: JSON | None = None) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}", parameters)


def _utf16_len(text: str) -> int:
    """Telegram counts lengths and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_field(key: str, value: str) -> Any:
    if key in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _normalise_chat_id(value: Any) -> ChatRef | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _html_plain(text: str) -> str:
    """Check Telegram's HTML subset and return the visible text."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            offset = _byte_offset(text, i)
            match = _HTML_TAG_RE.match(text, i)
            if match is None:
                if text[i + 1 : i + 2].isalpha() or text[i + 1 : i + 2] == "/":
                    raise _ParseError(f"Unclosed start tag at byte offset {offset}")
                raise _ParseError(f'Unsupported start tag "" at byte offset {offset}')
            closing, name = match.group(1) == "/", match.group(2).lower()
            if name not in _HTML_TAGS:
                kind = "end" if closing else "start"
                raise _ParseError(f'Unsupported {kind} tag "{name}" at byte offset {offset}')
            if not closing:
                stack.append(name)
            elif not stack:
                raise _ParseError(f"Unexpected end tag at byte offset {offset}")
            elif stack[-1] != name:
                raise _ParseError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1]}>", '
                    f'found "</{name}>"'
                )
            else:
                stack.pop()
            i = match.end()
            continue
        if ch == "&":
            entity = _HTML_ENTITY_RE.match(text, i)
            if entity is not None:
                out.append(html.unescape(entity.group()))
                i = entity.end()
                continue
        out.append(ch)
        i += 1
    if stack:
        raise _ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _mdv2_plain(text: str) -> str:
    """Check MarkdownV2 escaping (the usual source of 400s) and return the visible text."""
    out: list[str] = []
    open_at: dict[str, int] = {}
    brackets: list[int] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        offset = _byte_offset(text, i)
        if ch == "\\":
            if i + 1 < n:
                out.append(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise _ParseError(f"Can't find end of PreCode entity at byte offset {offset}")
            body = text[i + 3 : end]
            first, newline, rest = body.partition("\n")
            out.append(rest if newline and first and " " not in first else body)
            i = end + 3
            continue
        if ch == "`":
            end = i + 1
            while end < n and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise _ParseError(f"Can't find end of Code entity at byte offset {offset}")
            out.append(re.sub(r"\\(.)", r"\1", text[i + 1 : end]))
            i = end + 1
            continue
        if ch == "|" and text.startswith("||", i):
            _toggle(open_at, "||", offset)
            i += 2
            continue
        if ch == "_" and text.startswith("__", i):
            _toggle(open_at, "__", offset)
            i += 2
            continue
        if ch in "*_~":
            _toggle(open_at, ch, offset)
            i += 1
            continue
        if ch == "!" and text.startswith("![", i):
            i += 1
            continue
        if ch == "[":
            brackets.append(offset)
            i += 1
            continue
        if ch == "]" and brackets and text.startswith("](", i):
            brackets.pop()
            end = text.find(")", i + 2)
            if end < 0:
                raise _ParseError(f"Can't find end of a URL at byte offset {offset}")
            i = end + 1
            continue
        if ch == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if ch in _MDV2_NEVER_MARKUP or ch in "[>|":
            raise _ParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        out.append(ch)
        i += 1
    if brackets:
        raise _ParseError(f"Can't find end of TextUrl entity at byte offset {brackets[-1]}")
    for mark, offset in open_at.items():
        name = _MDV2_TOGGLES.get(mark, "Spoiler")
        raise _ParseError(f"Can't find end of {name} entity at byte offset {offset}")
    return "".join(out)


def _toggle(open_at: dict[str, int], mark: str, offset: int) -> None:
    if mark in open_at:
        del open_at[mark]
    else:
        open_at[mark] = offset


def _markdown_plain(text: str) -> str:
    """Legacy Markdown: every *, _, ` and [ opens an entity that must be closed."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if ch in "*_`" or ch == "[":
            closer = "]" if ch == "[" else ch
            if text.startswith("```", i):
                end = text.find("```", i + 3)
                width = 3
            else:
                end = text.find(closer, i + 1)
                width = 1
            if end < 0:
                offset = _byte_offset(text, i)
                raise _ParseError(f"Can't find end of the entity starting at byte offset {offset}")
            out.append(text[i + width : end])
            i = end + width
            if ch == "[" and text.startswith("(", i):
                close = text.find(")", i)
                i = close + 1 if close >= 0 else n
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode is None or parse_mode == "":
        return text
    mode = parse_mode.lower()
    try:
        if mode == "html":
            return _html_plain(text)
        if mode == "markdownv2":
            return _mdv2_plain(text)
        if mode == "markdown":
            return _markdown_plain(text)
    except _ParseError as exc:
        raise _bad(f"can't parse entities: {exc}") from None
    raise _bad("unsupported parse_mode")


def _check_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise _bad("BUTTON_TEXT_EMPTY")
            data = button.get("callback_data")
            url = button.get("url")
            actions = set(button) - {"text", "style", "icon_custom_emoji_id"}
            if not actions:
                raise _bad("text buttons are unallowed in the inline keyboard")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
            if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                raise _bad("BUTTON_URL_INVALID")


def _auto_entities(text: str) -> list[JSON]:
    """Entities Telegram's clients attach: bot commands, @mentions and bare links."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern in (("bot_command", _COMMAND_RE), ("url", _URL_RE), ("mention", _MENTION_RE)):
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e, _ in found):
                continue
            found.append((start, end, kind))
    found.sort()
    return [
        {"type": kind, "offset": _utf16_len(text[:start]), "length": _utf16_len(text[start:end])}
        for start, end, kind in found
    ]


def _member(status: str, user: JSON) -> JSON:
    """A ChatMember object with the fields the Bot API always sends for `status`."""
    member: JSON = {"status": status, "user": user}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=True,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
            can_pin_messages=True,
        )
    elif status == "kicked":
        member["until_date"] = 0
    elif status == "restricted":
        member.update(dict.fromkeys(_RESTRICTED_FLAGS, False), is_member=True, until_date=0)
    return member


def _update_kind(update: JSON) -> str:
    return next((key for key in update if key != "update_id"), "")


class FakeTelegram(LocalServer):
    """Local Bot API server; `async with FakeTelegram() as tg:` or start()/stop().

    Point python-telegram-bot at `tg.base_url` (it appends the token and method itself).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "sovereign_watch_test_bot",
        bot_name: str = "Sovereign Watch",
        limits: Limits | None = None,
        strict_chats: bool = False,
        validate_text: bool = True,
    ) -> None:
        self.token = token
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 123456789
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.limits = limits or Limits()
        self.strict_chats = strict_chats
        self.validate_text = validate_text

        self.log: list[LoggedRequest] = []
        self.rejected = 0
        self.injected = 0
        self.chats: dict[int, ChatConfig] = {}
        self.messages: defaultdict[int, list[JSON]] = defaultdict(list)
        self.drafts: defaultdict[int, list[JSON]] = defaultdict(list)
        self.chat_actions: list[JSON] = []
        self.callback_answers: list[JSON] = []
        self.commands: dict[str, list[JSON]] = {}
        self.scoped_commands: dict[tuple[str, str], list[JSON]] = {}
        self.webhook: JSON = {}
        self.deleted_webhook_calls = 0

        self._updates: list[JSON] = []
        self._next_update_id = 1
        self._last_pushed_id = 0
        self._allowed_updates: list[str] | None = None
        self._update_event = asyncio.Event()
        self._poll_generation = 0
        self._next_message_id: defaultdict[int, int] = defaultdict(int)
        self._open_callbacks: set[str] = set()
        self._next_callback = 1
        self._faults: list[_Fault] = []
        self._global_times: list[float] = []
        self._chat_times: defaultdict[int, list[float]] = defaultdict(list)
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.base_url = ""
        self._handlers: dict[str, Callable[[JSON], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "sendMessageDraft": self._send_message_draft,
            "answerCallbackQuery": self._answer_callback_query,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
        }
        self._by_lower = {name.lower(): name for name in self._handlers}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation ends a held getUpdates as soon as the client hangs up.
        self._runner, self.port = await serve_locally(app, cancel_on_hangup=True)
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        self._wake_pollers()
        await self._close_runner()

    @property
    def api_url(self) -> str:
        """The URL prefix a raw HTTP client uses: base_url plus the token."""
        return f"{self.base_url}{self.token}"

    # -- chat configuration ----------------------------------------------------------------

    def set_chat(
        self,
        chat_id: int,
        type: str = "group",
        admins: list[int] | None = None,
        is_forum: bool = False,
        *,
        title: str | None = None,
        username: str | None = None,
        owner_id: int | None = None,
        bot_status: str = "member",
    ) -> ChatConfig:
        """Declare a chat; `admins` answer getChatMember / getChatAdministrators as admins."""
        if type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {type!r}")
        chat = ChatConfig(
            id=chat_id,
            type=type,
            title=title if title is not None or type == "private" else f"Chat {chat_id}",
            username=username,
            admins=list(admins or []),
            owner_id=owner_id,
            is_forum=is_forum,
            bot_status=bot_status,
        )
        self.chats[chat_id] = chat
        return chat

    def set_bot_status(self, chat_id: int, status: str) -> None:
        """Change the bot's membership without an update (e.g. "kicked", "administrator")."""
        self._ensure_chat(chat_id).bot_status = status

    def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """Upgrade a group: sends to the old id then answer 400 with migrate_to_chat_id."""
        old = self._ensure_chat(old_chat_id, "group")
        old.migrated_to = new_chat_id
        if new_chat_id not in self.chats:
            self.set_chat(
                new_chat_id,
                "supergroup",
                admins=old.admins,
                title=old.title,
                owner_id=old.owner_id,
                bot_status=old.bot_status,
            )

    # -- injected failures -----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        n: int = 1,
        parameters: JSON | None = None,
        *,
        chat_id: ChatRef | None = None,
    ) -> None:
        """Answer the next `n` calls of `method` (optionally only for `chat_id`) with an error."""
        self._faults.append(
            _Fault(self._canonical(method), error_code, description, parameters, chat_id, n)
        )

    def storm_429(
        self, method: str, retry_after: int, n: int, chat_id: ChatRef | None = None
    ) -> None:
        self.fail_next(
            method,
            429,
            f"Too Many Requests: retry after {retry_after}",
            n,
            {"retry_after": retry_after},
            chat_id=chat_id,
        )

    def drop_response_next(
        self, method: str, n: int = 1, *, hang: float = 0.0, chat_id: ChatRef | None = None
    ) -> None:
        """Perform the next `n` successful calls but lose the answer.

        With hang=0 the connection is closed at once; otherwise the server holds it for `hang`
        seconds first (the client's read timeout usually fires) and then closes it.
        """
        self._faults.append(
            _Fault(self._canonical(method), 0, "", None, chat_id, n, drop=True, hang=hang)
        )

    def fail_get_updates(self, status: int, n: int = 1, retry_after: int = 1) -> None:
        """Make getUpdates fail `n` times: 429 (with retry_after), 409, 500 or 502."""
        if status == 429:
            self.storm_429("getUpdates", retry_after, n)
            return
        description = {
            409: "Conflict: terminated by other getUpdates request; make sure that only one "
            "bot instance is running",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, "Internal Server Error")
        self.fail_next("getUpdates", status, description, n)

    # -- updates ---------------------------------------------------------------------------

    def push_update(self, update: JSON) -> int:
        """Queue an update for getUpdates and apply its effect on the platform's state.

        Update ids must grow in delivery order (offsets confirm everything below them), so an
        update whose id is missing or not above the last pushed one gets a fresh id.
        """
        update = dict(update)
        given = update.get("update_id")
        if not isinstance(given, int) or given <= self._last_pushed_id:
            given = self._reserve_update_id()
        update["update_id"] = given
        self._last_pushed_id = given
        self._next_update_id = max(self._next_update_id, given + 1)
        self._apply_side_effects(update)
        self._updates.append(update)
        self._wake_pollers()
        return int(update["update_id"])

    def _reserve_update_id(self) -> int:
        self._next_update_id += 1
        return self._next_update_id - 1

    def _wrap(self, kind: str, payload: JSON) -> JSON:
        """Builders number updates when built, as Telegram does when the event happens."""
        return {"update_id": self._reserve_update_id(), kind: payload}

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def user(self, user_id: int, username: str | None = None, first_name: str = "Test") -> JSON:
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        user["language_code"] = "en"
        return user

    def message_update(
        self,
        chat_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        user_id: int | None = None,
        username: str | None = "tester",
        thread_id: int | None = None,
        entities: list[JSON] | None = None,
        reply_to_bot: bool = False,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        """A user's text message; entities default to what Telegram's clients would attach.

        reply_to_bot answers the bot's last message in the chat; reply_to_message_id a given one.

        chat_type defaults to the configured chat, else to what the id implies (positive:
        private, -100...: supergroup, other negative: group). user_id defaults to chat_id in
        private chats.
        """
        message = self._user_message(chat_id, chat_type, user_id, username, thread_id)
        message["text"] = text
        ents = _auto_entities(text) if entities is None else entities
        if ents:
            message["entities"] = ents
        if reply_to_bot:
            message["reply_to_message"] = self._bot_message_to_reply(chat_id, message)
        if reply_to_message_id is not None:
            record = self._find_message(chat_id, reply_to_message_id)
            if record is None:
                raise KeyError(f"no message {reply_to_message_id} in chat {chat_id}")
            message["reply_to_message"] = self._message_json(self.chats[chat_id], record)
        return self._wrap("message", message)

    def edited_message_update(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        user_id: int | None = None,
        username: str | None = "tester",
    ) -> JSON:
        message = self._user_message(chat_id, chat_type, user_id, username, None)
        message.update(message_id=message_id, text=text, edit_date=int(time.time()))
        message["date"] = message["edit_date"] - 60
        ents = _auto_entities(text)
        if ents:
            message["entities"] = ents
        return self._wrap("edited_message", message)

    def sticker_update(
        self,
        chat_id: int,
        *,
        emoji: str = "👍",
        chat_type: str | None = None,
        user_id: int | None = None,
        username: str | None = "tester",
    ) -> JSON:
        message = self._user_message(chat_id, chat_type, user_id, username, None)
        unique = f"AgAD{message['message_id']:04d}"
        message["sticker"] = {
            "file_id": f"CAACAgIAAxkBAAE{unique}",
            "file_unique_id": unique,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "TestStickers",
            "file_size": 20480,
        }
        return self._wrap("message", message)

    def callback_update(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        user_id: int | None = None,
        *,
        username: str | None = "tester",
    ) -> JSON:
        """A button press on the bot's message `message_id` (synthesised if not recorded)."""
        chat = self._ensure_chat(chat_id)
        uid = user_id if user_id is not None else self._default_user(chat)
        record = self._find_message(chat_id, message_id)
        if record is not None:
            message = self._message_json(chat, record)
        else:
            message = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat_json(chat),
                "date": int(time.time()),
                "text": "",
            }
        query_id = f"{self.bot_id}{self._next_callback:08d}"
        self._next_callback += 1
        query = {
            "id": query_id,
            "from": self.user(uid, username),
            "chat_instance": str(abs(chat_id) * 7 + 3),
            "data": data,
            "message": message,
        }
        return self._wrap("callback_query", query)

    def my_chat_member_update(
        self,
        chat_id: int,
        old_status: str,
        new_status: str,
        *,
        chat_type: str | None = None,
        user_id: int | None = None,
    ) -> JSON:
        """The bot's membership changed (member -> kicked is a user blocking the bot)."""
        chat = self._ensure_chat(chat_id, chat_type)
        uid = user_id if user_id is not None else self._default_user(chat)
        change = {
            "chat": self._chat_json(chat),
            "from": self.user(uid, "tester"),
            "date": int(time.time()),
            "old_chat_member": _member(old_status, self.bot_user),
            "new_chat_member": _member(new_status, self.bot_user),
        }
        return self._wrap("my_chat_member", change)

    def migrate_update(
        self, old_chat_id: int, new_chat_id: int, *, side: str = "to", user_id: int = 1001
    ) -> JSON:
        """The service message of a group upgrade: side "to" in the old group, "from" in the
        new supergroup. Pushing the "to" message migrates the chat state."""
        if side == "to":
            message = self._user_message(old_chat_id, "group", user_id, "tester", None)
            message["migrate_to_chat_id"] = new_chat_id
        else:
            message = self._user_message(new_chat_id, "supergroup", user_id, "tester", None)
            message["migrate_from_chat_id"] = old_chat_id
        return self._wrap("message", message)

    # -- benchmark and assertion helpers ---------------------------------------------------

    def sent_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[JSON]:
        return [m for m in self.messages.get(chat_id, []) if include_deleted or not m["deleted"]]

    def texts(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.sent_messages(chat_id)]

    def requests(self, method: str | None = None) -> list[LoggedRequest]:
        return [r for r in self.log if method is None or r.method == method]

    def max_in_window(self, chat_id: int | None, window_s: float) -> int:
        """Most sends (sendMessage + editMessageText that went through) in any window of
        `window_s` seconds, for one chat or (None) across the bot."""
        times = self._global_times if chat_id is None else self._chat_times.get(chat_id, [])
        best = 0
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - window_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.01)

    async def wait_for_messages(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[JSON]:
        await self.wait_for(lambda: len(self.sent_messages(chat_id)) >= count, timeout)
        return self.sent_messages(chat_id)

    # -- request plumbing ------------------------------------------------------------------

    def _canonical(self, method: str) -> str:
        return self._by_lower.get(method.lower(), method)

    async def _read_params(self, request: web.Request) -> JSON:
        params: JSON = {k: _decode_field(k, v) for k, v in request.query.items()}
        if request.method != "POST" or not request.body_exists:
            return params
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = _decode_field(key, value)
            else:
                params[key] = {"filename": getattr(value, "filename", None)}
        return params

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self._error_response(404, "Not Found")
        token, method = parts[0][3:], self._canonical(parts[1])
        try:
            params = await self._read_params(request)
        except ValueError:
            params = {}
        chat_id = _normalise_chat_id(params.get("chat_id"))

        def record(status: int, outcome: str) -> None:
            self.log.append(LoggedRequest(now, method, chat_id, status, outcome, params))

        if token != self.token:
            record(401, "unauthorized")
            return self._error_response(401, "Unauthorized")
        handler = self._handlers.get(method)
        if handler is None:
            record(404, "not_found")
            return self._error_response(404, "Not Found: method not found")
        fault = self._take_fault(method, chat_id, drop=False)
        if fault is not None:
            self.injected += 1
            record(fault.status, "injected")
            return self._error_response(fault.status, fault.description, fault.parameters)
        try:
            result = await handler(params)
        except _ApiError as exc:
            record(exc.status, exc.outcome)
            return self._error_response(exc.status, exc.description, exc.parameters)
        drop = self._take_fault(method, chat_id, drop=True)
        if drop is not None:
            record(0, "dropped")
            if drop.hang:
                await asyncio.sleep(drop.hang)
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError  # nothing more is written on a closed connection
        record(200, "ok")
        return web.json_response({"ok": True, "result": result})

    def _take_fault(self, method: str, chat_id: ChatRef | None, *, drop: bool) -> _Fault | None:
        for fault in self._faults:
            if fault.method != method or fault.drop != drop:
                continue
            if fault.chat_id is not None and fault.chat_id != chat_id:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    @staticmethod
    def _error_response(
        status: int, description: str, parameters: JSON | None = None
    ) -> web.Response:
        body: JSON = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    # -- chats and messages ----------------------------------------------------------------

    def _ensure_chat(self, chat_id: int, chat_type: str | None = None) -> ChatConfig:
        chat = self.chats.get(chat_id)
        if chat is None:
            if chat_type is None:
                if chat_id > 0:
                    chat_type = "private"
                elif chat_id <= -1_000_000_000_000:
                    chat_type = "supergroup"
                else:
                    chat_type = "group"
            chat = self.set_chat(chat_id, chat_type)
        elif chat_type is not None and chat.type != chat_type:
            chat.type = chat_type
            if chat_type != "private" and chat.title is None:
                chat.title = f"Chat {chat_id}"
        return chat

    def _lookup_chat(self, params: JSON) -> ChatConfig:
        raw = _normalise_chat_id(params.get("chat_id"))
        if raw is None:
            raise _bad("chat_id is empty")
        if isinstance(raw, str):
            name = raw.removeprefix("@").lower()
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == name:
                    return chat
            raise _bad("chat not found")
        if raw not in self.chats and self.strict_chats:
            raise _bad("chat not found")
        return self._ensure_chat(raw)

    def _deliverable_chat(self, params: JSON) -> ChatConfig:
        """The target chat, or the error Telegram gives when the bot cannot post there."""
        chat = self._lookup_chat(params)
        if chat.migrated_to is not None:
            raise _bad(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.bot_status in ("kicked", "left"):
            if chat.type == "private":
                reason = (
                    "bot was blocked by the user"
                    if chat.bot_status == "kicked"
                    else "bot can't initiate conversation with a user"
                )
            elif chat.bot_status == "kicked" and chat.type != "channel":
                reason = f"bot was kicked from the {chat.type} chat"
            else:
                reason = f"bot is not a member of the {chat.type} chat"
            raise _ApiError(403, f"Forbidden: {reason}")
        if chat.type == "channel" and chat.bot_status not in ("administrator", "creator"):
            raise _bad("need administrator rights in the channel chat")
        return chat

    def _chat_json(self, chat: ChatConfig) -> JSON:
        data: JSON = {"id": chat.id, "type": chat.type}
        if chat.type == "private":
            data["first_name"] = "Test"
            data["username"] = chat.username or "tester"
        else:
            data["title"] = chat.title or f"Chat {chat.id}"
            if chat.username:
                data["username"] = chat.username
            if chat.is_forum:
                data["is_forum"] = True
        return data

    def _new_message_id(self, chat_id: int) -> int:
        self._next_message_id[chat_id] += 1
        return self._next_message_id[chat_id]

    def _default_user(self, chat: ChatConfig) -> int:
        return chat.id if chat.type == "private" else 1001

    def _user_message(
        self,
        chat_id: int,
        chat_type: str | None,
        user_id: int | None,
        username: str | None,
        thread_id: int | None,
    ) -> JSON:
        chat = self._ensure_chat(chat_id, chat_type)
        uid = user_id if user_id is not None else self._default_user(chat)
        message: JSON = {
            "message_id": self._new_message_id(chat_id),
            "from": self.user(uid, username),
            "chat": self._chat_json(chat),
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.is_forum:
                message["is_topic_message"] = True
        return message

    def _bot_message_to_reply(self, chat_id: int, message: JSON) -> JSON:
        chat = self.chats[chat_id]
        sent = self.sent_messages(chat_id)
        if sent:
            return self._message_json(chat, sent[-1])
        return {
            "message_id": max(1, int(message["message_id"]) - 1),
            "from": self.bot_user,
            "chat": self._chat_json(chat),
            "date": int(message["date"]) - 1,
            "text": "Earlier message from the bot",
        }

    def _find_message(self, chat_id: int, message_id: Any) -> JSON | None:
        for record in self.messages.get(chat_id, []):
            if record["message_id"] == message_id and not record["deleted"]:
                return record
        return None

    def _message_json(self, chat: ChatConfig, record: JSON) -> JSON:
        message: JSON = {
            "message_id": record["message_id"],
            "from": self.bot_user,
            "chat": self._chat_json(chat),
            "date": record["date"],
            "text": record["plain_text"],
        }
        if record["thread_id"] is not None:
            message["message_thread_id"] = record["thread_id"]
            if chat.is_forum:
                message["is_topic_message"] = True
        markup = record["reply_markup"]
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if record["edits"]:
            message["edit_date"] = int(time.time())
        return message

    def _apply_side_effects(self, update: JSON) -> None:
        for kind in ("message", "edited_message", "channel_post"):
            message = update.get(kind)
            if isinstance(message, dict) and isinstance(message.get("chat"), dict):
                chat = message["chat"]
                self._ensure_chat(int(chat["id"]), chat.get("type"))
                if kind == "message" and message.get("migrate_to_chat_id") is not None:
                    self.migrate_chat(int(chat["id"]), int(message["migrate_to_chat_id"]))
        member = update.get("my_chat_member")
        if isinstance(member, dict):
            chat_data = member["chat"]
            chat = self._ensure_chat(int(chat_data["id"]), chat_data.get("type"))
            new = member.get("new_chat_member", {})
            if new.get("user", {}).get("id") == self.bot_id:
                chat.bot_status = str(new.get("status", chat.bot_status))
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query:
            self._open_callbacks.add(str(query["id"]))

    # -- flood limits ----------------------------------------------------------------------

    @staticmethod
    def _wait_needed(times: list[float], count: int, window: float, now: float) -> float | None:
        """Seconds until one more send fits, or None if it fits now (times are sorted)."""
        if count <= 0:
            return window
        recent = len(times) - bisect.bisect_right(times, now - window)
        if recent < count:
            return None
        return times[len(times) - count] + window - now

    def _admit_send(self, chat: ChatConfig) -> None:
        """Apply Telegram's flood limits; a send that fits is counted against them."""
        now = time.monotonic()
        if self.limits.enabled:
            lim = self.limits
            chat_times = self._chat_times[chat.id]
            waits = [
                self._wait_needed(self._global_times, lim.global_count, lim.global_window, now),
                self._wait_needed(chat_times, lim.chat_count, lim.chat_window, now),
            ]
            if chat.type in ("group", "supergroup"):
                waits.append(self._wait_needed(chat_times, lim.group_count, lim.group_window, now))
            pending = [w for w in waits if w is not None]
            if pending:
                self.rejected += 1
                retry = max(1, math.ceil(max(pending)))
                raise _ApiError(
                    429,
                    f"Too Many Requests: retry after {retry}",
                    {"retry_after": retry},
                    outcome="rate_limited",
                )
        self._global_times.append(now)
        self._chat_times[chat.id].append(now)

    def _checked_text(self, params: JSON) -> tuple[str, str | None, str]:
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        if not isinstance(text, str) or not text:
            raise _bad("message text is empty")
        plain = _visible_text(text, parse_mode) if self.validate_text else text
        if not plain.strip():
            raise _bad("message text is empty")
        if _utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        _check_markup(params.get("reply_markup"))
        return text, parse_mode, plain

    # -- methods ---------------------------------------------------------------------------

    async def _true(self, params: JSON) -> bool:
        return True

    async def _get_me(self, params: JSON) -> JSON:
        return dict(self.bot_user)

    async def _delete_webhook(self, params: JSON) -> bool:
        self.deleted_webhook_calls += 1
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _set_webhook(self, params: JSON) -> bool:
        url = params.get("url")
        if not url:
            return await self._delete_webhook(params)
        if not str(url).startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
        }
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    @staticmethod
    def _scope_key(params: JSON) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_NAME_RE.match(
                str(command.get("command", ""))
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._scope_key(params)
        self.scoped_commands[key] = commands
        if key[0] == json.dumps({"type": "default"}):
            self.commands[key[1]] = commands
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        return self.scoped_commands.get(self._scope_key(params), [])

    async def _delete_my_commands(self, params: JSON) -> bool:
        key = self._scope_key(params)
        self.scoped_commands.pop(key, None)
        if key[0] == json.dumps({"type": "default"}):
            self.commands.pop(key[1], None)
        return True

    def _wake_pollers(self) -> None:
        event, self._update_event = self._update_event, asyncio.Event()
        event.set()

    def _deliverable_updates(self, limit: int) -> list[JSON]:
        allowed = self._allowed_updates
        kept: list[JSON] = []
        for update in self._updates:
            kind = _update_kind(update)
            if kind in allowed if allowed else kind not in _OPT_IN_UPDATES:
                kept.append(update)
        self._updates = kept  # Telegram never creates updates the bot did not ask for
        return kept[:limit]

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook.get("url"):
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older held request ends with 409, as on Telegram
        offset = int(params.get("offset") or 0)
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            ready = self._deliverable_updates(limit)
            remaining = deadline - loop.time()
            if ready or self._closing or remaining <= 0:
                return ready
            event = self._update_event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    async def _send_message(self, params: JSON) -> JSON:
        chat = self._deliverable_chat(params)
        text, parse_mode, plain = self._checked_text(params)
        self._admit_send(chat)
        thread_id = params.get("message_thread_id")
        record: JSON = {
            "message_id": self._new_message_id(chat.id),
            "chat_id": chat.id,
            "text": text,
            "plain_text": plain,
            "parse_mode": parse_mode,
            "reply_markup": params.get("reply_markup"),
            "thread_id": thread_id,
            "link_preview_options": params.get("link_preview_options"),
            "disable_web_page_preview": params.get("disable_web_page_preview"),
            "reply_parameters": params.get("reply_parameters"),
            "disable_notification": params.get("disable_notification"),
            "date": int(time.time()),
            "t": time.monotonic(),
            "edits": [],
            "deleted": False,
        }
        self.messages[chat.id].append(record)
        message = self._message_json(chat, record)
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target = self._find_message(chat.id, reply.get("message_id"))
            if target is not None:
                message["reply_to_message"] = self._message_json(chat, target)
        return message

    async def _edit_message_text(self, params: JSON) -> JSON | bool:
        if params.get("inline_message_id"):
            self._checked_text(params)
            return True
        chat = self._lookup_chat(params)
        record = self._find_message(chat.id, params.get("message_id"))
        if record is None:
            raise _bad("message to edit not found")
        text, parse_mode, plain = self._checked_text(params)
        markup = params.get("reply_markup")
        if (
            text == record["text"]
            and parse_mode == record["parse_mode"]
            and markup == record["reply_markup"]
        ):
            raise _bad(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        self._admit_send(chat)
        record.update(text=text, plain_text=plain, parse_mode=parse_mode, reply_markup=markup)
        record["edits"].append(
            {"text": text, "parse_mode": parse_mode, "reply_markup": markup, "t": time.monotonic()}
        )
        return self._message_json(chat, record)

    async def _send_message_draft(self, params: JSON) -> bool:
        chat = self._deliverable_chat(params)
        text = params.get("text")
        parse_mode = params.get("parse_mode")
        if isinstance(text, str) and text and self.validate_text:
            _visible_text(text, parse_mode)
        self.drafts[chat.id].append(
            {
                "draft_id": params.get("draft_id"),
                "text": text,
                "parse_mode": parse_mode,
                "thread_id": params.get("message_thread_id"),
                "t": time.monotonic(),
            }
        )
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_callbacks:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": params.get("text"),
                "show_alert": bool(params.get("show_alert", False)),
                "url": params.get("url"),
                "cache_time": params.get("cache_time"),
            }
        )
        return True

    async def _get_chat(self, params: JSON) -> JSON:
        chat = self._lookup_chat(params)
        data = self._chat_json(chat)
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return data

    def _status_of(self, chat: ChatConfig, user_id: int) -> str:
        if user_id == self.bot_id:
            return chat.bot_status
        if chat.owner_id == user_id:
            return "creator"
        if user_id in chat.admins:
            return "administrator"
        return "member"

    async def _get_chat_member(self, params: JSON) -> JSON:
        chat = self._lookup_chat(params)
        user_id = int(params.get("user_id") or 0)
        user = self.bot_user if user_id == self.bot_id else self.user(user_id)
        return _member(self._status_of(chat, user_id), user)

    async def _get_chat_administrators(self, params: JSON) -> list[JSON]:
        chat = self._lookup_chat(params)
        if chat.type == "private":
            raise _bad("there are no administrators in the private chat")
        ids = ([chat.owner_id] if chat.owner_id is not None else []) + chat.admins
        if chat.bot_status in ("administrator", "creator"):
            ids.append(self.bot_id)
        result: list[JSON] = []
        for user_id in dict.fromkeys(ids):
            user = self.bot_user if user_id == self.bot_id else self.user(user_id)
            result.append(_member(self._status_of(chat, user_id), user))
        return result

    async def _delete_message(self, params: JSON) -> bool:
        chat = self._lookup_chat(params)
        record = self._find_message(chat.id, params.get("message_id"))
        if record is None:
            raise _bad("message to delete not found")
        record["deleted"] = True
        return True

    async def _send_chat_action(self, params: JSON) -> bool:
        chat = self._deliverable_chat(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append(
            {
                "chat_id": chat.id,
                "action": action,
                "thread_id": params.get("message_thread_id"),
                "t": time.monotonic(),
            }
        )
        return True


async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """Fixture body: `fake_telegram = pytest_asyncio.fixture(fake_telegram)` in a conftest."""
    async with FakeTelegram() as server:
        yield server
