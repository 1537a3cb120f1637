"""Outbound Telegram: alerts, digests and their edits through python-telegram-bot's `Bot`.

Renders with `bot.core.deliver.render` (HTML parse mode, mute buttons as an inline keyboard,
forum topics via message_thread_id) and turns Bot API errors into the delivery worker's
error family. It never sleeps or retries on its own: the worker owns every wait. Requests that
may have reached Telegram without an answer (a read timeout, a dropped connection) are told
apart from ones that surely did not (connect failures, 5xx), because Telegram has no
idempotency key and a resend of the former may duplicate.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

import httpx
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
)
from telegram.constants import ParseMode
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
from telegram.request import HTTPXRequest

from bot.adapters.telegram_urls import api_base_urls
from bot.core.deliver.render import TelegramText, safe_url, telegram_alert, telegram_reply
from bot.core.errors import (
    DeliveryError,
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RateLimited,
    TargetMigrated,
    TransientDeliveryError,
)
from bot.core.models import AlertMessage, Button, Reply, SendResult, Target

log = logging.getLogger(__name__)

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _chat_id(target: Target) -> int | str:
    text = target.chat_id.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _thread_id(target: Target) -> int | None:
    return int(target.thread_id) if target.thread_id.strip().isdigit() else None


def _keyboard(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.action[:64]) for b in row] for row in rows]
    )


def _retry_seconds(exc: RetryAfter) -> float:
    """retry_after in seconds, whichever type PTB is configured to give (no deprecation noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _forbidden_kind(message: str) -> str:
    text = message.lower()
    if "blocked" in text:
        return "blocked"
    if "kicked" in text:
        return "kicked"
    if "deactivated" in text:
        return "not_found"
    return "forbidden"


def _bad_request_kind(message: str) -> str:
    text = message.lower()
    if any(
        s in text
        for s in ("chat not found", "thread not found", "topic_deleted", "chat was deactivated")
    ):
        return "not_found"
    if any(s in text for s in ("rights", "not enough", "topic_closed", "not a member")):
        return "forbidden"
    return "bad_request"


def map_error(exc: TelegramError) -> DeliveryError:
    """A python-telegram-bot error as what the delivery worker should do about it."""
    reason = str(exc)[:300]
    if isinstance(exc, RetryAfter):
        return RateLimited(reason, _retry_seconds(exc), scope="chat")
    if isinstance(exc, ChatMigrated):
        return TargetMigrated(reason, str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return PermanentDeliveryError(reason, _forbidden_kind(reason))
    if isinstance(exc, BadRequest):
        return PermanentDeliveryError(reason, _bad_request_kind(reason))
    if isinstance(exc, TimedOut):
        if isinstance(exc.__cause__, _NOT_SENT) or "not* sent" in reason:
            return TransientDeliveryError(reason)
        return DeliveryOutcomeUnknown(reason)
    if isinstance(exc, NetworkError):
        cause = exc.__cause__
        if isinstance(cause, _NOT_SENT):
            return TransientDeliveryError(reason)
        if isinstance(cause, httpx.HTTPError):
            return DeliveryOutcomeUnknown(reason)
        return TransientDeliveryError(reason)  # a 5xx answer: Telegram did not take it
    if isinstance(exc, InvalidToken):
        return TransientDeliveryError(f"the bot token was refused: {reason}")
    return TransientDeliveryError(reason)


class TelegramAlertSender:
    """AlertSender over a python-telegram-bot `Bot` (initialised by the caller)."""

    platform = "telegram"

    def __init__(self, bot: Bot, paid_broadcast: bool = False) -> None:
        self.bot = bot
        self.paid_broadcast = paid_broadcast

    async def close(self) -> None:
        await self.bot.shutdown()

    async def _post(
        self, target: Target, text: TelegramText, preview: LinkPreviewOptions
    ) -> Message:
        kwargs: dict[str, Any] = {}
        if self.paid_broadcast:
            kwargs["allow_paid_broadcast"] = True
        try:
            return await self.bot.send_message(
                chat_id=_chat_id(target),
                text=text.html,
                parse_mode=ParseMode.HTML,
                reply_markup=_keyboard(text.buttons),
                link_preview_options=preview,
                message_thread_id=_thread_id(target),
                **kwargs,
            )
        except TelegramError as exc:
            raise map_error(exc) from exc

    @staticmethod
    def _alert_preview(alert: AlertMessage) -> LinkPreviewOptions:
        url = safe_url(alert.url)
        if url is None:
            return LinkPreviewOptions(is_disabled=True)
        return LinkPreviewOptions(url=url, prefer_small_media=True)

    async def send_alert(self, target: Target, alert: AlertMessage, *, nonce: str) -> SendResult:
        message = await self._post(target, telegram_alert(alert), self._alert_preview(alert))
        return SendResult(str(message.message_id))

    async def edit_alert(self, target: Target, message_id: str, alert: AlertMessage) -> None:
        text = telegram_alert(alert)
        try:
            await self.bot.edit_message_text(
                text=text.html,
                chat_id=_chat_id(target),
                message_id=int(message_id),
                parse_mode=ParseMode.HTML,
                reply_markup=_keyboard(text.buttons),
                link_preview_options=self._alert_preview(alert),
            )
        except TelegramError as exc:
            raise map_error(exc) from exc

    async def send_text(self, target: Target, reply: Reply, *, nonce: str) -> SendResult:
        first: str | None = None
        no_preview = LinkPreviewOptions(is_disabled=True)
        for piece in telegram_reply(reply):
            message = await self._post(target, piece, no_preview)
            first = first or str(message.message_id)
        return SendResult(first or "")


async def open_telegram_sender(
    token: str,
    *,
    base_url: str | None = None,
    paid_broadcast: bool = False,
    pool_size: int = 128,
) -> TelegramAlertSender:
    """A ready sender: a `Bot` with a connection pool sized for parallel chats, initialised
    (getMe), so a bad token fails here rather than on the first alert."""
    request = HTTPXRequest(
        connection_pool_size=pool_size,
        connect_timeout=10.0,
        read_timeout=15.0,
        write_timeout=15.0,
        pool_timeout=10.0,
    )
    kwargs: dict[str, Any] = {"request": request}
    bases = api_base_urls(base_url)
    if bases:
        kwargs["base_url"], kwargs["base_file_url"] = bases
    bot = Bot(token, **kwargs)
    await bot.initialize()
    log.info("telegram sender ready", extra={"paid_broadcast": paid_broadcast})
    return TelegramAlertSender(bot, paid_broadcast)
