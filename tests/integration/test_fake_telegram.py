"""The real python-telegram-bot client against the fake Bot API server.

These tests prove the fake is faithful enough for the adapter's tests to mean something: PTB's
own request encoding, error mapping (RetryAfter, Forbidden, ChatMigrated) and polling loop run
unchanged against it, and the published flood limits are enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
import telegram
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.fakes.telegram_api import FakeTelegram, Limits

PRIVATE = 4242
FORUM = -1001234567890


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB's future RetryAfter.retry_after type instead of a deprecation warning."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=tg.base_url) as client:
        yield client


@contextlib.asynccontextmanager
async def polling_app(
    server: FakeTelegram, handlers: Sequence[BaseHandler[Any, Any, Any]]
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = ApplicationBuilder().token(server.token).base_url(server.base_url).build()
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value if isinstance(value, int) else value.total_seconds()


async def test_polling_command_reply_reaches_the_server(tg: FakeTelegram) -> None:
    tg.set_chat(FORUM, "supergroup", is_forum=True)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome to Sovereign Watch")

    async with polling_app(tg, [CommandHandler("start", start)]):
        tg.push_update(tg.message_update(PRIVATE, "/start"))
        tg.push_update(tg.message_update(FORUM, f"/start@{tg.bot_user['username']}", thread_id=9))
        private = await tg.wait_for_messages(PRIVATE)
        topic = await tg.wait_for_messages(FORUM)
        await tg.wait_for(lambda: not tg.pending_updates)

    assert [m["text"] for m in private] == ["Welcome to Sovereign Watch"]
    assert private[0]["thread_id"] is None
    assert topic[0]["thread_id"] == 9  # PTB keeps forum replies in the topic
    methods = [r.method for r in tg.log]
    assert methods[0] == "getMe"
    assert "deleteWebhook" in methods
    assert methods.count("getUpdates") >= 2


async def test_html_message_with_keyboard_is_recorded(tg: FakeTelegram, bot: telegram.Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("More", callback_data="more:1")],
            [InlineKeyboardButton("Source", url="https://example.org/story")],
        ]
    )
    sent = await bot.send_message(
        PRIVATE,
        "<b>Korea</b> picks &amp; funds five model teams",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
        link_preview_options=telegram.LinkPreviewOptions(is_disabled=True),
    )

    assert sent.text == "Korea picks & funds five model teams"
    assert sent.chat.type == "private"
    assert sent.reply_markup == keyboard
    [record] = tg.sent_messages(PRIVATE)
    assert record["message_id"] == sent.message_id
    assert record["text"] == "<b>Korea</b> picks &amp; funds five model teams"
    assert record["parse_mode"] == "HTML"
    assert record["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "more:1"
    assert record["link_preview_options"] == {"is_disabled": True}


async def test_set_my_commands_per_language(tg: FakeTelegram, bot: telegram.Bot) -> None:
    assert await bot.set_my_commands([BotCommand("digest", "Today's digest")])
    assert await bot.set_my_commands(
        [BotCommand("digest", "오늘의 요약"), BotCommand("ask", "질문하기")], language_code="ko"
    )

    assert [c["command"] for c in tg.commands["ko"]] == ["digest", "ask"]
    assert tg.commands[""][0]["description"] == "Today's digest"
    got = await bot.get_my_commands(language_code="ko")
    assert [c.description for c in got] == ["오늘의 요약", "질문하기"]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_injected_429_raises_retry_after(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.storm_429("sendMessage", retry_after=7, n=1)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(PRIVATE, "hello")
    assert seconds(caught.value) == 7
    assert tg.log[-1].status == 429 and tg.log[-1].outcome == "injected"
    assert tg.sent_messages(PRIVATE) == []


async def test_blocked_and_kicked_raise_forbidden(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
        await bot.send_message(PRIVATE, "hello")

    # State-driven: pushing the my_chat_member update makes later sends fail the same way.
    tg.push_update(tg.my_chat_member_update(PRIVATE + 1, "member", "kicked"))
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(PRIVATE + 1, "hello")
    tg.push_update(tg.my_chat_member_update(-555, "member", "kicked", chat_type="group"))
    with pytest.raises(Forbidden, match=r"(?i)kicked from the group chat"):
        await bot.send_message(-555, "hello")


async def test_migrated_group_raises_chat_migrated(tg: FakeTelegram, bot: telegram.Bot) -> None:
    new_id = -1009876543210
    tg.fail_next(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        parameters={"migrate_to_chat_id": new_id},
    )
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(-4000, "hello")
    assert caught.value.new_chat_id == new_id

    tg.push_update(tg.migrate_update(-4001, new_id))
    with pytest.raises(ChatMigrated) as again:
        await bot.send_message(-4001, "hello")
    assert again.value.new_chat_id == new_id
    sent = await bot.send_message(new_id, "hello again")
    assert sent.chat.type == "supergroup"


async def test_private_chat_allows_one_message_per_second(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    results = await asyncio.gather(
        *(bot.send_message(PRIVATE, f"burst {i}") for i in range(3)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, telegram.Message)]
    limited = [r for r in results if isinstance(r, RetryAfter)]
    assert len(ok) == 1 and len(limited) == 2
    assert all(seconds(exc) == 1 for exc in limited)
    assert tg.rejected == 2
    assert tg.max_in_window(PRIVATE, 1.0) == 1
    assert [r.outcome for r in tg.requests("sendMessage")].count("rate_limited") == 2

    await asyncio.sleep(seconds(limited[0]))
    await bot.send_message(PRIVATE, "after waiting")
    assert tg.texts(PRIVATE)[-1] == "after waiting"


async def test_group_and_global_limits() -> None:
    limits = Limits(global_count=5, chat_count=100, group_count=3, group_window=30.0)
    async with (
        FakeTelegram(limits=limits) as tg,
        telegram.Bot(tg.token, base_url=tg.base_url) as bot,
    ):
        tg.set_chat(-700, "group")
        for i in range(3):
            await bot.send_message(-700, f"group {i}")
        with pytest.raises(RetryAfter) as group_limited:
            await bot.send_message(-700, "one too many")
        assert 29 <= seconds(group_limited.value) <= 30

        await bot.send_message(1, "a")
        await bot.send_message(2, "b")
        with pytest.raises(RetryAfter) as global_limited:
            await bot.send_message(3, "c")  # sixth accepted send inside one second
        assert seconds(global_limited.value) == 1
        assert tg.max_in_window(None, 1.0) == 5
        assert tg.rejected == 2


async def test_get_updates_failures_then_recovery(tg: FakeTelegram) -> None:
    received: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text
        received.append(update.effective_message.text)
        await update.effective_message.reply_text("still here")

    tg.fail_get_updates(502, n=2)
    tg.fail_get_updates(429, n=1, retry_after=1)
    started = time.monotonic()
    async with polling_app(tg, [CommandHandler("start", start)]):
        tg.push_update(tg.message_update(PRIVATE, "/start"))
        await tg.wait_for_messages(PRIVATE, timeout=15)

    statuses = [r.status for r in tg.requests("getUpdates")]
    assert statuses[:3] == [502, 502, 429]
    assert 200 in statuses[3:]
    assert received == ["/start"]
    assert time.monotonic() - started < 15


async def test_callback_query_reaches_handler(tg: FakeTelegram) -> None:
    seen: list[str] = []

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        seen.append(query.data)
        await query.answer("Loading more")

    async with polling_app(tg, [CallbackQueryHandler(on_button, pattern=r"^more:")]):
        tg.push_update(tg.callback_update(PRIVATE, 12, "more:2", user_id=PRIVATE))
        await tg.wait_for(lambda: bool(tg.callback_answers))

    assert seen == ["more:2"]
    assert tg.callback_answers[0]["text"] == "Loading more"


async def test_lost_response_still_delivers(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.drop_response_next("sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(PRIVATE, "maybe sent")
    assert tg.texts(PRIVATE) == ["maybe sent"]  # the platform did deliver it
    assert tg.log[-1].outcome == "dropped"


async def test_markup_validation_like_telegram(tg: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(PRIVATE, "<b>unclosed", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(PRIVATE + 1, "GPU < 10k", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)reserved and must be escaped"):
        await bot.send_message(PRIVATE + 2, "Version 2.0", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(PRIVATE + 3, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            PRIVATE + 4,
            "hi",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("x", callback_data="y" * 65)]]
            ),
        )
    sent = await bot.send_message(PRIVATE + 5, r"Version 2\.0 *bold*", parse_mode="MarkdownV2")
    assert sent.text == "Version 2.0 bold"
    assert tg.requests("sendMessage")[0].outcome == "error"


async def test_edit_delete_and_draft(tg: FakeTelegram, bot: telegram.Bot) -> None:
    sent = await bot.send_message(PRIVATE, "Draft answer")
    with pytest.raises(RetryAfter):  # edits count against the per-chat limit too
        await bot.edit_message_text("Final answer", chat_id=PRIVATE, message_id=sent.message_id)
    await asyncio.sleep(1.0)
    edited = await bot.edit_message_text(
        "Final answer", chat_id=PRIVATE, message_id=sent.message_id
    )
    assert isinstance(edited, telegram.Message) and edited.text == "Final answer"
    record = tg.sent_messages(PRIVATE)[0]
    assert record["text"] == "Final answer"
    assert [e["text"] for e in record["edits"]] == ["Final answer"]
    await asyncio.sleep(1.0)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Final answer", chat_id=PRIVATE, message_id=sent.message_id)

    assert await bot.send_message_draft(PRIVATE, draft_id=7, text="Thinking")
    assert tg.drafts[PRIVATE][0]["draft_id"] == 7
    assert await bot.send_chat_action(PRIVATE, "typing")
    assert tg.chat_actions[0]["action"] == "typing"
    assert await bot.delete_message(PRIVATE, sent.message_id)
    assert tg.sent_messages(PRIVATE) == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(PRIVATE, sent.message_id)


async def test_chat_admins_and_members(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.set_chat(-100555, "supergroup", admins=[11, 12], owner_id=10, title="Policy desk")
    admins = await bot.get_chat_administrators(-100555)
    assert {(m.user.id, m.status) for m in admins} == {
        (10, "creator"),
        (11, "administrator"),
        (12, "administrator"),
    }
    assert (await bot.get_chat_member(-100555, 11)).status == "administrator"
    assert (await bot.get_chat_member(-100555, 99)).status == "member"
    assert (await bot.get_chat_member(-100555, tg.bot_id)).status == "member"
    chat = await bot.get_chat(-100555)
    assert chat.type == "supergroup" and chat.title == "Policy desk"


async def test_update_builders_parse_in_ptb(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.set_chat(FORUM, "supergroup", is_forum=True)
    text = "/digest@sovereign_watch_test_bot 한국 @someone https://example.org/a"
    update = Update.de_json(tg.message_update(FORUM, text, thread_id=3), bot)
    message = update.message
    assert message is not None and message.is_topic_message
    assert [e.type for e in message.entities] == ["bot_command", "mention", "url"]
    assert message.parse_entity(message.entities[1]) == "@someone"
    assert message.parse_entity(message.entities[2]) == "https://example.org/a"

    reply = Update.de_json(tg.message_update(-42, "what about Japan?", reply_to_bot=True), bot)
    assert reply.message is not None and reply.message.reply_to_message is not None
    assert reply.message.reply_to_message.from_user is not None
    assert reply.message.reply_to_message.from_user.id == tg.bot_id

    sticker = Update.de_json(tg.sticker_update(PRIVATE), bot)
    assert sticker.message is not None and sticker.message.sticker is not None
    edited = Update.de_json(tg.edited_message_update(PRIVATE, 5, "fixed typo"), bot)
    assert edited.edited_message is not None and edited.edited_message.edit_date is not None
    member = Update.de_json(tg.my_chat_member_update(PRIVATE, "member", "kicked"), bot)
    assert member.my_chat_member is not None
    assert member.my_chat_member.new_chat_member.status == "kicked"
    migrate = Update.de_json(tg.migrate_update(-42, -10042), bot)
    assert migrate.message is not None and migrate.message.migrate_to_chat_id == -10042


async def test_raw_http_contract(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.api_url}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        form = {"chat_id": "42", "text": "123", "reply_markup": json.dumps({"inline_keyboard": []})}
        async with http.post(f"{tg.api_url}/sendMessage", data=form) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["result"]["text"] == "123"
        async with http.post(
            f"{tg.api_url}/sendmessage", json={"chat_id": 43, "text": "json body"}
        ) as resp:
            assert resp.status == 200
        async with http.post(f"{tg.base_url}999:wrong/getMe") as resp:
            assert resp.status == 401
            assert (await resp.json())["description"] == "Unauthorized"
    assert tg.texts(42) == ["123"] and tg.texts(43) == ["json body"]

    with pytest.raises(InvalidToken):
        async with telegram.Bot("999:wrong", base_url=tg.base_url):
            pass  # initialize() calls getMe, which the fake refuses
