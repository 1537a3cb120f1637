"""The Telegram adapter end to end: real python-telegram-bot over HTTP against the fake Bot API.

Each test starts the adapter as `run` does (same App, real SQLite), pushes the updates Telegram
would send (messages, button presses, membership changes, group upgrades, 429s and 502s) and
checks what reached the server: messages, HTML, edits, drafts, callback answers, commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.adapters.telegram_bot import (
    ONLY_ADMINS,
    STALE_BUTTON,
    TEXT_ONLY,
    TelegramBot,
    deep_link_args,
)
from bot.adapters.telegram_sender import open_telegram_sender
from bot.app import App, build_app
from bot.config import Settings
from bot.core.deliver.ratelimit import TELEGRAM_LIMITS, UNLIMITED, PlatformLimiter
from bot.core.models import FeedEntry, Mode, Target
from tests.conftest import cli_env
from tests.fakes.feed_server import FeedServer, make_rss
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram, Limits

pytestmark = pytest.mark.timeout(60)

USER = 4242
OTHER_USER = 4343
GROUP = -4001
ADMIN = 5001
MEMBER = 5002
FORUM = -1001234567890
KOREA_Q = "Which consortia did South Korea select to build sovereign foundation models?"
Json = dict[str, Any]


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to PTB's future RetryAfter type instead of a deprecation warning."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


def _entry(n: int, title: str, summary: str, *, lang: str | None = None) -> FeedEntry:
    return FeedEntry(
        url=f"https://wire.example/story/{n}",
        title=title,
        summary=summary,
        published=datetime(2025, 9, n, tzinfo=UTC),
        source="Example Wire",
        feed_url="https://wire.example/feed.xml",
        lang=lang,
    )


ENTRIES = [
    _entry(
        1,
        "South Korea names consortia to build sovereign foundation models",
        "Seoul's science ministry selected five consortia to build independent Korean "
        "foundation models, backed by government-funded GPU clusters.",
    ),
    _entry(
        2,
        "France funds a national AI compute cluster for Mistral AI",
        "The French government will pay for a national compute cluster that Mistral AI will "
        "use to train sovereign language models.",
    ),
    _entry(
        3,
        "Japan backs Sakana AI with a grant for efficient Japanese models",
        "Tokyo awarded Sakana AI a grant under its national AI program to build efficient "
        "Japanese language models.",
    ),
]
HOSTILE_TITLE = "@everyone <b>South Korea</b> <script>alert(1)</script> AI chip fund & GPUs"


@dataclass
class Harness:
    tg: FakeTelegram
    app: App
    bot: TelegramBot

    def push(self, update: Json) -> None:
        self.tg.push_update(update)

    def say(self, chat: int, text: str, **kw: Any) -> None:
        self.push(self.tg.message_update(chat, text, **kw))

    async def replies(self, chat: int, count: int = 1, timeout: float = 8.0) -> list[Json]:
        return await self.tg.wait_for_messages(chat, count, timeout)

    async def reply_to(self, chat: int, text: str, timeout: float = 8.0, **kw: Any) -> Json:
        before = len(self.tg.sent_messages(chat))
        self.say(chat, text, **kw)
        return (await self.replies(chat, before + 1, timeout))[before]

    async def quiet(self, chat: int, count: int, seconds: float = 0.7) -> None:
        """Nothing more than `count` messages arrive in `chat` within `seconds`."""
        await asyncio.sleep(seconds)
        assert len(self.tg.sent_messages(chat)) == count, self.tg.texts(chat)

    def subs(self, chat: int, thread: str = "") -> list[Any]:
        return self.app.store.subscriptions.for_target(Target("telegram", str(chat), thread))


def _settings(tmp_path: Path, tg: FakeTelegram, **extra: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        SW_DB_PATH=str(tmp_path / "store" / "sw.db"),
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_API_BASE_URL=tg.base_url,
        SW_OWNER_IDS=str(USER),
        SW_LOAD_STARTER="false",
        **extra,
    )


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    *,
    real_limits: bool = False,
    entries: list[FeedEntry] | None = None,
    webhook: bool = False,
    **extra: str,
) -> AsyncIterator[Harness]:
    limits = Limits() if real_limits else Limits(enabled=False)
    async with FakeTelegram(limits=limits) as tg:
        if webhook:
            extra["TELEGRAM_WEBHOOK_URL"] = "https://bot.example/telegram/hook"
        app = build_app(_settings(tmp_path, tg, **extra), load_starter=False)
        app.ingestor.ingest(ENTRIES if entries is None else entries, source_id=None)
        limiter = PlatformLimiter(TELEGRAM_LIMITS if real_limits else UNLIMITED)
        bot = TelegramBot(
            app,
            limiter=limiter,
            poll_timeout=1.0,
            webhook_listen=("127.0.0.1", 0) if webhook else None,
        )
        await bot.start()
        try:
            yield Harness(tg, app, bot)
        finally:
            await bot.stop()
            if app.llm is not None:
                await app.llm.close()
            app.close()


# --- start, help, menu ----------------------------------------------------------------------
async def test_start_registers_menus_and_welcomes(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        en = h.tg.commands[""]
        ko = h.tg.commands["ko"]
        names = [c["command"] for c in en]
        for name in ("start", "help", "ask", "latest", "subscribe", "unsubscribe"):
            assert name in names
        assert names == [c["command"] for c in ko]
        assert any(c["description"] == "도움말" for c in ko)
        assert h.tg.deleted_webhook_calls >= 1  # polling mode clears any webhook

        welcome = await h.reply_to(USER, "/start")
        assert welcome["parse_mode"] == "HTML"
        assert "Welcome to Sovereign Watch" in welcome["plain_text"]
        assert "/subscribe" in welcome["plain_text"]
        helped = await h.reply_to(USER, "/help")
        assert "/latest" in helped["plain_text"] and "<b>Help</b>" in helped["text"]


async def test_questions_by_command_and_plain_message(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        asked = await h.reply_to(USER, f"/ask {KOREA_Q}")
        assert "consortia" in asked["plain_text"] or "Korea" in asked["plain_text"]
        assert "Sources" in asked["plain_text"]
        assert '<a href="https://wire.example/story/1">' in asked["text"]
        plain = await h.reply_to(USER, "What is France funding for Mistral AI?")
        assert "wire.example/story/2" in plain["text"]
        empty = await h.reply_to(USER, "/ask")
        assert "Ask me something" in empty["plain_text"]
        long = await h.reply_to(USER, KOREA_Q + " please" * 1500)  # about 10,000 characters
        assert "was long" in long["plain_text"]
        assert len(long["plain_text"]) <= 4096


async def test_groups_answer_only_mentions_and_replies(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        h.say(GROUP, KOREA_Q, user_id=MEMBER)
        await h.quiet(GROUP, 0)
        mention = await h.reply_to(GROUP, f"@sovereign_watch_test_bot {KOREA_Q}", user_id=MEMBER)
        assert "Sources" in mention["plain_text"]
        assert mention["reply_parameters"]["message_id"] > 0  # answers the asker
        follow = await h.reply_to(
            GROUP, "And what about France and Mistral?", user_id=MEMBER, reply_to_bot=True
        )
        assert "wire.example" in follow["text"]


# --- commands -------------------------------------------------------------------------------
async def test_latest_subscribe_subscriptions_digest_why_unsubscribe(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        latest = await h.reply_to(USER, "/latest KR")
        assert "South Korea names consortia" in latest["plain_text"]
        assert "France" not in latest["plain_text"]
        bad = await h.reply_to(USER, "/latest Narnia")
        assert "Narnia" in bad["plain_text"]

        done = await h.reply_to(USER, "/subscribe KR JP topic:compute digest@08:30")
        assert "Subscribed (#" in done["plain_text"]
        [sub] = h.subs(USER)
        assert sub.spec.countries == ("KR", "JP") and sub.spec.mode is Mode.DIGEST
        assert sub.spec.digest_time == "08:30"
        listing = await h.reply_to(USER, "/subscriptions")
        assert f"#{sub.id}" in listing["plain_text"]

        digest = await h.reply_to(USER, "/digest")
        assert digest["plain_text"]
        why = await h.reply_to(USER, "/why https://wire.example/story/2")
        assert "none of this chat's subscriptions" in why["plain_text"]

        gone = await h.reply_to(USER, f"/unsubscribe {sub.id}")
        assert f"Removed subscription #{sub.id}" in gone["plain_text"]
        assert h.subs(USER) == []


async def test_why_as_a_reply_to_an_alert_names_the_subscription(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.reply_to(USER, "/subscribe FR")
        done = await h.reply_to(USER, "/subscribe KR kw:semiconductor")
        sub = next(s for s in h.subs(USER) if s.spec.countries == ("KR",))
        assert f"#{sub.id}" in done["plain_text"]
        title = "Seoul offers a talent visa to foreign semiconductor researchers"
        fresh = FeedEntry(
            url="https://wire.example/story/9",
            title=title,
            summary="South Korea's science ministry will grant fast visas to semiconductor and "
            "AI researchers to grow national AI talent.",
            published=datetime.now(UTC),
            source="Example Wire",
            feed_url="https://wire.example/feed.xml",
        )
        h.app.ingestor.ingest([fresh], source_id=None)
        sender = await open_telegram_sender(h.tg.token, base_url=h.tg.base_url)
        try:
            await h.app.delivery_worker({"telegram": sender}).drain_once(max_wait=5)
            await h.reply_to(USER, "/subscribe topic:talent")  # queues a catch-up message
            await h.app.delivery_worker({"telegram": sender}).drain_once(max_wait=5)
        finally:
            await sender.close()
        alert = next(m for m in h.tg.sent_messages(USER) if m["plain_text"].startswith("🇰🇷"))
        why = await h.reply_to(USER, "/why", reply_to_message_id=alert["message_id"])
        assert f"matched subscription #{sub.id}" in why["plain_text"]
        assert "semiconductor" in why["plain_text"] and title in why["plain_text"]
        sent = h.tg.sent_messages(USER)
        catchup = next(m for m in sent if m["plain_text"].startswith("The last 7"))
        about = await h.reply_to(USER, "/why", reply_to_message_id=catchup["message_id"])
        assert "catch-up" in about["plain_text"]
        other = await h.reply_to(USER, "/why", reply_to_message_id=done["message_id"])
        assert "link" in other["plain_text"]  # not a delivery: asks for a link instead


async def test_only_group_admins_change_subscriptions(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        refused = await h.reply_to(GROUP, "/subscribe KR", user_id=MEMBER)
        assert ONLY_ADMINS in refused["plain_text"]
        assert h.subs(GROUP) == []
        refused = await h.reply_to(GROUP, "/unsubscribe all", user_id=MEMBER)
        assert ONLY_ADMINS in refused["plain_text"]
        ok = await h.reply_to(GROUP, "/subscribe KR", user_id=ADMIN)
        assert "Subscribed" in ok["plain_text"]
        assert len(h.subs(GROUP)) == 1
        anyone = await h.reply_to(GROUP, "/subscriptions", user_id=MEMBER)
        assert "South Korea" in anyone["plain_text"]
        assert h.tg.requests("getChatMember")  # asked Telegram, not guessed


async def test_forum_topics_are_separate_targets(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.tg.set_chat(FORUM, "supergroup", admins=[ADMIN], is_forum=True)
        done = await h.reply_to(FORUM, "/subscribe KR", user_id=ADMIN, thread_id=7)
        assert done["thread_id"] == 7
        assert len(h.subs(FORUM, "7")) == 1
        assert h.subs(FORUM) == [] and h.subs(FORUM, "9") == []
        other = await h.reply_to(FORUM, "/subscriptions", user_id=ADMIN, thread_id=9)
        assert other["thread_id"] == 9
        assert "no subscriptions" in other["plain_text"]


async def test_membership_pauses_and_resumes(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        await h.reply_to(GROUP, "/subscribe KR", user_id=ADMIN)
        h.push(h.tg.my_chat_member_update(GROUP, "member", "kicked"))
        await h.tg.wait_for(lambda: h.subs(GROUP)[0].paused)
        assert h.subs(GROUP)[0].paused_reason == "kicked"
        h.push(h.tg.my_chat_member_update(GROUP, "left", "member"))
        await h.tg.wait_for(lambda: not h.subs(GROUP)[0].paused)

        await h.reply_to(USER, "/subscribe JP")
        h.push(h.tg.my_chat_member_update(USER, "member", "kicked"))  # the user blocked us
        await h.tg.wait_for(lambda: h.subs(USER)[0].paused)
        assert h.subs(USER)[0].paused_reason == "blocked"
        h.tg.set_bot_status(USER, "member")  # unblocked, then /start
        again = await h.reply_to(USER, "/start")
        assert "on again" in again["plain_text"]
        assert not h.subs(USER)[0].paused


async def test_group_upgrade_keeps_subscriptions(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        new_id = -1009990001
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        await h.reply_to(GROUP, "/subscribe KR topic:compute", user_id=ADMIN)
        h.push(h.tg.migrate_update(GROUP, new_id, side="to"))
        h.push(h.tg.migrate_update(GROUP, new_id, side="from"))
        await h.tg.wait_for(lambda: len(h.subs(new_id)) == 1)
        assert h.subs(GROUP) == []
        assert h.subs(new_id)[0].spec.topics == ("compute",)
        listing = await h.reply_to(new_id, "/subscriptions", user_id=ADMIN)
        assert "compute" in listing["plain_text"]


# --- buttons --------------------------------------------------------------------------------
def _buttons(message: Json) -> dict[str, str]:
    rows = message["reply_markup"]["inline_keyboard"]
    return {b["callback_data"]: b["text"] for row in rows for b in row}


async def _press(h: Harness, chat: int, message_id: int, data: str, **kw: Any) -> Json:
    before = len(h.tg.callback_answers)
    h.push(h.tg.callback_update(chat, message_id, data, **kw))
    await h.tg.wait_for(lambda: len(h.tg.callback_answers) > before)
    return h.tg.callback_answers[before]


async def test_inline_keyboard_subscribe_flow(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        menu = await h.reply_to(USER, "/subscribe")
        data = _buttons(menu)
        assert {"k:c:KR", "k:t:compute", "k:m:digest", "k:ok", "k:x"} <= set(data)
        assert all(len(d.encode()) <= 64 for d in data)
        mid = menu["message_id"]
        await _press(h, USER, mid, "k:c:KR")
        await _press(h, USER, mid, "k:c:JP")
        await _press(h, USER, mid, "k:c:JP")  # untick
        await _press(h, USER, mid, "k:t:compute")
        await _press(h, USER, mid, "k:m:digest")
        ticked = _buttons(h.tg.sent_messages(USER)[-1])
        assert ticked["k:c:KR"].startswith("✓") and not ticked["k:c:JP"].startswith("✓")
        assert ticked["k:m:digest"].startswith("✓") and not ticked["k:m:instant"].startswith("✓")
        answer = await _press(h, USER, mid, "k:ok")
        assert answer["text"] == "Saved."
        [sub] = h.subs(USER)
        assert sub.spec.countries == ("KR",) and sub.spec.topics == ("compute",)
        assert sub.spec.mode is Mode.DIGEST
        final = h.tg.sent_messages(USER)[-1]
        assert "Subscribed" in final["plain_text"] and final["reply_markup"] is None
        weekly = await h.reply_to(USER, "/subscribe")
        await _press(h, USER, weekly["message_id"], "k:t:policy")
        await _press(h, USER, weekly["message_id"], "k:m:weekly")
        assert (await _press(h, USER, weekly["message_id"], "k:ok"))["text"] == "Saved."
        modes = {s.spec.topics: (s.spec.mode, s.spec.digest_day) for s in h.subs(USER)}
        assert modes[("policy",)][0] is Mode.DIGEST and modes[("policy",)][1] is not None


async def test_forged_and_stale_callbacks_get_polite_answers(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        menu = await h.reply_to(USER, "/subscribe")
        mid = menu["message_id"]
        for data in ("k:c:ZZ", "k:ok:extra", "mute:country:ZZ", "sub:XX", "<b>x</b>", "k:t:x"):
            answer = await _press(h, USER, mid, data)
            assert answer["text"], data
        stale = await _press(h, USER, 999, "k:c:KR")  # a message without our keyboard
        assert stale["text"] == STALE_BUTTON
        nothing = await _press(h, USER, mid, "k:ok")  # nothing ticked yet
        assert "Pick a country" in nothing["text"]
        refused = await _press(h, GROUP, 1, "mute:topic:compute", user_id=MEMBER)
        assert refused["text"] == ONLY_ADMINS and refused["show_alert"]
        assert h.subs(USER) == []
        still = await h.reply_to(USER, "/help")  # the bot is fine
        assert "/subscribe" in still["plain_text"]


async def test_mute_buttons_adjust_subscriptions(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.reply_to(USER, "/subscribe KR JP")
        await h.reply_to(USER, "/subscribe topic:compute")
        count = len(h.tg.sent_messages(USER))
        answer = await _press(h, USER, 1, "mute:country:KR")
        assert "Muted South Korea" in answer["text"]
        await h.replies(USER, count + 1)
        specs = sorted((s.spec for s in h.subs(USER)), key=lambda s: len(s.countries))
        assert specs[0].countries == ("JP",)
        assert "KR" not in specs[1].countries and "JP" in specs[1].countries  # was "all"
        count = len(h.tg.sent_messages(USER))
        await _press(h, USER, 1, "mute:topic:compute")
        assert all("compute" not in s.spec.topics for s in h.subs(USER))
        [confirm] = (await h.replies(USER, count + 1))[count:]
        assert "Muted compute" in confirm["plain_text"]


async def test_deep_link_subscribes_in_one_tap(tmp_path: Path) -> None:
    assert deep_link_args("sub_KR_JP_topic-compute_digest-0900") == (
        "KR JP topic:compute digest@09:00"
    )
    assert deep_link_args("bogus payload!") is None
    async with running(tmp_path) as h:
        done = await h.reply_to(USER, "/start sub_KR_topic-compute")
        assert "Subscribed" in done["plain_text"]
        [sub] = h.subs(USER)
        assert sub.spec.countries == ("KR",) and sub.spec.topics == ("compute",)
        bad = await h.reply_to(USER, "/start sub_Narnia")
        assert "Narnia" in bad["plain_text"]
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        refused = await h.reply_to(GROUP, "/start@sovereign_watch_test_bot sub_KR", user_id=MEMBER)
        assert ONLY_ADMINS in refused["plain_text"]


# --- hostile and odd input ------------------------------------------------------------------
async def test_hostile_text_arrives_inert(tmp_path: Path) -> None:
    hostile = _entry(
        4,
        HOSTILE_TITLE,
        "South Korea launches a national AI chip fund for GPUs and sovereign models.",
    )
    async with running(tmp_path, entries=[*ENTRIES, hostile]) as h:
        latest = await h.reply_to(USER, "/latest KR")
        assert "<script>" not in latest["text"] and "&lt;script&gt;" in latest["text"]
        assert "<b>South Korea</b>" not in latest["text"]
        assert "<script>alert(1)</script>" in latest["plain_text"]  # shown as typed
        assert "@everyone" not in latest["plain_text"]  # broken so it notifies nobody
        assert "& GPUs" in html.unescape(latest["text"])
        asked = await h.reply_to(USER, "/latest <script>@everyone</script>")
        assert "<script>" not in asked["text"]
        q = await h.reply_to(USER, "@everyone <b>bold</b> <script>x</script> chip fund?")
        assert "<script>" not in q["text"]


async def test_long_replies_split_on_paragraphs(tmp_path: Path) -> None:
    rng = random.Random(7)
    syllables = ["ka", "ro", "mi", "tan", "seo", "jun", "bel", "dor", "vik", "lum", "zen", "pra"]

    def words(n: int) -> str:  # distinct made-up words, so no two items group as one story
        return " ".join("".join(rng.choice(syllables) for _ in range(3)) for _ in range(n))

    many = [
        FeedEntry(
            url=f"https://wire.example/long/{i}",
            title="South Korea AI " + words(30),
            summary="Korean government compute for national foundation models " + words(8),
            published=datetime(2025, 9, 1 + i % 28, tzinfo=UTC),
            source="Example Wire",
            feed_url="https://wire.example/feed.xml",
        )
        for i in range(40)
    ]
    async with running(tmp_path, entries=many) as h:
        h.say(USER, "/digest")
        await h.replies(USER, 2)
        await asyncio.sleep(0.5)
        parts = h.tg.sent_messages(USER)
        assert len(parts) >= 2
        for part in parts:
            assert len(part["plain_text"].encode("utf-16-le")) // 2 <= 4096
        assert all(not p["plain_text"].startswith("\n") for p in parts)


async def test_question_flood_gets_one_polite_notice(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for i in range(50):
            h.say(USER, f"Question number {i} about Korean AI?")
        await h.replies(USER, 6, timeout=15)
        await h.quiet(USER, 6, 1.0)
        notices = [t for t in h.tg.texts(USER) if "faster than I can answer" in t]
        assert len(notices) == 1
        other = await h.reply_to(OTHER_USER, KOREA_Q)  # others are not held up
        assert "Sources" in other["plain_text"]


async def test_polling_survives_429_and_502(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.reply_to(USER, "/help")
        h.tg.fail_get_updates(429, 1, retry_after=1)
        h.tg.fail_get_updates(502, 2)
        await h.tg.wait_for(lambda: h.tg.injected >= 3, timeout=20)
        answer = await h.reply_to(USER, "/help", timeout=20)
        assert "/subscribe" in answer["plain_text"]
        statuses = {r.status for r in h.tg.requests("getUpdates")}
        assert {429, 502} <= statuses


async def test_unknown_commands_other_bots_edits_and_stickers(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        unknown = await h.reply_to(USER, "/frobnicate now")
        assert "/help" in unknown["plain_text"] and "frobnicate" in unknown["plain_text"]
        h.say(USER, "/help@otherbot")
        h.push(h.tg.edited_message_update(USER, 1, "/help"))
        await h.quiet(USER, 1)
        h.push(h.tg.sticker_update(USER))
        sticker = await h.replies(USER, 2)
        assert sticker[-1]["plain_text"] == TEXT_ONLY
        h.say(GROUP, "/frobnicate", user_id=MEMBER)
        h.push(h.tg.sticker_update(GROUP, user_id=MEMBER))
        await h.quiet(GROUP, 0)
        addressed = await h.reply_to(GROUP, "/frobnicate@sovereign_watch_test_bot", user_id=MEMBER)
        assert "/help" in addressed["plain_text"]
        korean = await h.reply_to(USER, "/도움말")
        assert "/subscribe" in korean["plain_text"]


async def test_status_is_for_operators(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        status = await h.reply_to(USER, "/status")
        assert "articles: 3" in status["plain_text"]
        assert "outbox" in status["plain_text"] and "long polling" in status["plain_text"]
        refused = await h.reply_to(OTHER_USER, "/status")
        assert "operators" in refused["plain_text"]
        h.tg.set_chat(GROUP, "group", admins=[ADMIN])
        h.say(GROUP, "/status", user_id=MEMBER)
        await h.quiet(GROUP, 0)


# --- streaming ------------------------------------------------------------------------------
def _long_reply(messages: list[dict[str, Any]]) -> str:
    words = " ".join(f"word{i}" for i in range(24))
    return f"Seoul picked five consortia for sovereign models [1]. {words} [1]."


async def test_streaming_private_uses_drafts_then_final_message(tmp_path: Path) -> None:
    async with FakeOpenAI(_long_reply, chunk_delay=0.05) as llm:
        env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test-telegram-0000000000"}
        async with running(tmp_path, **env) as h:
            final = await h.reply_to(USER, KOREA_Q)
            drafts = h.tg.drafts[USER]
            assert len(drafts) >= 2
            assert all(d["parse_mode"] == "HTML" for d in drafts)
            assert len({d["draft_id"] for d in drafts}) == 1
            assert "five consortia" in final["plain_text"] and "Sources" in final["plain_text"]
            assert final["edits"] == []


async def test_streaming_group_edits_at_most_every_1_5_s(tmp_path: Path) -> None:
    async with FakeOpenAI(_long_reply, chunk_delay=0.15) as llm:
        env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test-telegram-0000000000"}
        async with running(tmp_path, real_limits=True, **env) as h:
            h.tg.set_chat(GROUP, "group", admins=[ADMIN])
            h.say(GROUP, f"@sovereign_watch_test_bot {KOREA_Q}", user_id=MEMBER)
            [message] = await h.replies(GROUP, 1)
            await h.tg.wait_for(
                lambda: "Sources" in h.tg.sent_messages(GROUP)[0]["plain_text"], timeout=15
            )
            message = h.tg.sent_messages(GROUP)[0]
            stamps = [message["t"], *(e["t"] for e in message["edits"])]
            assert len(stamps) >= 3  # shown while written, then the final text
            gaps = [b - a for a, b in itertools.pairwise(stamps)]
            assert min(gaps) >= 1.45, gaps
            assert "five consortia" in message["plain_text"]
            assert h.tg.rejected == 0
            assert len(h.tg.sent_messages(GROUP)) == 1


async def test_streaming_edits_pause_during_retry_after(tmp_path: Path) -> None:
    async with FakeOpenAI(_long_reply, chunk_delay=0.15) as llm:
        env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test-telegram-0000000000"}
        async with running(tmp_path, **env) as h:
            h.tg.set_chat(GROUP, "group", admins=[ADMIN])
            h.tg.storm_429("editMessageText", retry_after=3, n=1, chat_id=GROUP)
            h.say(GROUP, f"@sovereign_watch_test_bot {KOREA_Q}", user_id=MEMBER)
            await h.tg.wait_for(
                lambda: (
                    bool(h.tg.sent_messages(GROUP))
                    and "Sources" in h.tg.sent_messages(GROUP)[0]["plain_text"]
                ),
                timeout=20,
            )
            edits = [r for r in h.tg.requests("editMessageText") if r.chat_id == GROUP]
            first_429 = next(r for r in edits if r.status == 429)
            later = [r for r in edits if r.t > first_429.t]
            assert later and min(r.t for r in later) - first_429.t >= 2.9
            assert "five consortia" in h.tg.sent_messages(GROUP)[0]["plain_text"]


# --- webhook --------------------------------------------------------------------------------
async def test_webhook_mode_checks_the_secret(tmp_path: Path) -> None:
    async with running(tmp_path, webhook=True) as h:
        assert h.tg.webhook["url"] == "https://bot.example/telegram/hook"
        secret = h.tg.webhook["secret_token"]
        assert secret and h.bot.webhook_port
        url = f"http://127.0.0.1:{h.bot.webhook_port}/telegram/hook"
        update = h.tg.message_update(USER, "/help")
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=update) as resp:
                assert resp.status == 403
            bad = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            async with session.post(url, json=update, headers=bad) as resp:
                assert resp.status == 403
            await h.quiet(USER, 0, 0.3)
            good = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with session.post(url, data=b"not json", headers=good) as resp:
                assert resp.status == 400
            async with session.post(url, json=update, headers=good) as resp:
                assert resp.status == 200
        [reply] = await h.replies(USER, 1)
        assert "/subscribe" in reply["plain_text"]


# --- the real process -----------------------------------------------------------------------
async def test_real_process_answers_start_delivers_alert_once_and_stops(tmp_path: Path) -> None:
    """`python -m bot run` with the README's settings: /start within 5 s of launch, an alert
    for a subscribed chat exactly once after the feed publishes it, SIGTERM -> exit 0 in 5 s."""
    async with FakeTelegram() as tg, FeedServer() as feeds:
        feeds.set_feed("/ai.xml", make_rss("Wire", []))
        feed_file = tmp_path / "feeds.txt"
        feed_file.write_text(feeds.url("/ai.xml") + "\n")
        db = tmp_path / "store" / "sw.db"
        env = cli_env(
            db,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_BASE_URL=tg.base_url,
            SW_FEEDS_FILE=str(feed_file),
            SW_POLL_SECONDS="1",
            SW_LOG_LEVEL="INFO",
        )
        tg.push_update(tg.message_update(USER, "/start"))
        launched = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await tg.wait_for_messages(USER, 1, timeout=5.0)
            took = time.monotonic() - launched
            assert "Welcome" in tg.texts(USER)[0]

            tg.push_update(tg.message_update(USER, "/subscribe KR"))
            await tg.wait_for(lambda: any("Subscribed" in t for t in tg.texts(USER)), 10)
            title = "South Korea funds a sovereign GPU cluster for Korean foundation models"
            feeds.set_feed(
                "/ai.xml",
                make_rss(
                    "Wire",
                    [
                        (
                            title,
                            "https://wire.example/alert/1",
                            "The Korean science ministry will fund a national GPU cluster "
                            "for sovereign foundation models built by Korean companies.",
                        )
                    ],
                ),
            )
            await tg.wait_for(lambda: any(title in t for t in tg.texts(USER)), 15)
            await asyncio.sleep(2.5)  # more polls: still exactly one alert
            assert sum(title in t for t in tg.texts(USER)) == 1
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = await asyncio.wait_for(proc.wait(), 5.0)
            exited = time.monotonic() - stopped
            print(f"/start answered {took:.2f} s after launch; SIGTERM to exit {exited:.2f} s")
            assert code == 0
            assert exited < 5.0
            assert took < 5.0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            _, err = await proc.communicate()
        log = err.decode()
        assert tg.token not in log
        assert "Traceback" not in log, log[-3000:]


def test_environment_is_clean() -> None:
    assert "TELEGRAM_BOT_TOKEN" not in os.environ
