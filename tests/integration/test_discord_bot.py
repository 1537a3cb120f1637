"""The Discord adapter end to end: real discord.py against the local REST + gateway fake.

Each test starts the adapter as `run` does (same client, tree, store), sends what Discord would
send (INTERACTION_CREATE, MESSAGE_CREATE, GUILD_DELETE, disconnects, 429s) and checks what
reached the server: callbacks, edits, follow-ups, flags, allowed_mentions, command writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import signal
import sys
import time
import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.adapters.discord_bot import (
    GUILD_REMOVED,
    KOREAN,
    DiscordBot,
    build_client,
    run_discord,
    subscribe_args,
)
from bot.app import App, build_app
from bot.config import Settings
from bot.core.errors import UsageError
from bot.core.models import FeedEntry, Mode, Target
from tests.conftest import cli_env
from tests.fakes import discord_api
from tests.fakes.discord_api import FakeDiscord, FakeInteraction, permission_bits
from tests.fakes.feed_server import FeedServer, make_rss
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.timeout(60)

GUILD = 1_400_000_000_000_000_000
CHANNEL = GUILD + 10
OTHER = GUILD + 11
THREAD = GUILD + 12
OWNER = 1_400_000_000_000_000_500
USER = 1_400_000_000_000_000_600
MANAGER = 1_400_000_000_000_000_700
DM_CHANNEL = 1_400_000_000_000_000_900
BLOCKER = 1_400_000_000_000_000_800
BLOCKED_DM = 1_400_000_000_000_000_901

MEMBER = str(permission_bits("view_channel", "send_messages", "use_application_commands"))
MODERATOR = str(
    permission_bits("view_channel", "send_messages", "use_application_commands", "manage_channels")
)
KOREA_Q = "What is South Korea doing to build its own AI model?"
Json = dict[str, Any]
NEWS_FEED = "https://news.example/feed.xml"


def _news(n: int, title: str, summary: str) -> FeedEntry:
    return FeedEntry(
        url=f"https://news.example/{n}",
        title=title,
        summary=summary,
        published=datetime.now(UTC) - timedelta(hours=n),
        source="Example Wire",
        feed_url=NEWS_FEED,
    )


NEWS = [
    _news(
        1,
        "South Korea funds a national GPU centre for its sovereign AI models",
        "The Ministry of Science and ICT will pay for a national GPU centre so that Korean "
        "companies can train sovereign foundation models at home.",
    ),
    _news(
        2,
        "Japan's government backs Sakana AI to build Japanese language models",
        "Japan's economy ministry will support Sakana AI with compute grants for sovereign "
        "Japanese language models.",
    ),
]


class FakeDiscordWithDMs(FakeDiscord):
    """The shared fake plus DM channels: replies land in `messages`; a blocker answers 50007."""

    def __init__(self) -> None:
        super().__init__()
        self.dm_channels: dict[int, int] = {}
        self.blocked: set[int] = set()

    def _visible_channel(self, channel_id: int, need: int = 0) -> Any:
        user = self.dm_channels.get(channel_id)
        if user is None:
            return super()._visible_channel(channel_id, need)
        if user in self.blocked:
            raise discord_api._ApiError(
                403, {"code": 50007, "message": "Cannot send messages to this user"}
            )
        return types.SimpleNamespace(id=None), {"id": str(channel_id), "type": 1}

    def permissions_in(self, channel_id: int, user_id: int | None = None) -> int:
        if channel_id in self.dm_channels:
            return discord_api.DEFAULT_BOT_PERMISSIONS
        return super().permissions_in(channel_id, user_id)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the starter knowledge, built once and copied per test (saves ~1.5 s each)."""
    path = tmp_path_factory.mktemp("template") / "sw.db"
    app = build_app(Settings(SW_DB_PATH=path))  # type: ignore[call-arg]
    counts = app.ingestor.ingest(NEWS, source_id=None)  # no feed row: nothing to poll
    assert counts.relevant == len(NEWS)
    app.close()
    return path


@pytest.fixture
def db_copy(template_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store" / "sw.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template_db, path)
    return path


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscordWithDMs]:
    async with FakeDiscordWithDMs() as fake:
        fake.add_guild(GUILD, channels=[CHANNEL, OTHER], owner_id=OWNER, members=[USER, MANAGER])
        fake.dm_channels[DM_CHANNEL] = USER
        fake.dm_channels[BLOCKED_DM] = BLOCKER
        fake.blocked.add(BLOCKER)
        with fake.patched():
            yield fake


def make_settings(server: FakeDiscord, db: Path, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        SW_DB_PATH=db,
        DISCORD_BOT_TOKEN=server.token,
        DISCORD_API_BASE_URL=server.rest_base,
        DISCORD_GATEWAY_URL=server.gateway_url,
        SW_OWNER_IDS=str(OWNER),
        **extra,
    )


@pytest.fixture
async def app(server: FakeDiscord, db_copy: Path) -> AsyncIterator[App]:
    built = build_app(make_settings(server, db_copy))
    yield built
    await shut(built)


async def shut(app: App) -> None:
    if app.llm is not None:
        await app.llm.close()
    app.close()


@contextlib.asynccontextmanager
async def running(server: FakeDiscord, app: App) -> AsyncIterator[DiscordBot]:
    """The adapter serving, handed over once the guild is in its cache."""
    bot = DiscordBot(app)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.serve(server.token, stop))
    try:
        await server.wait_for(lambda: bot.client.get_guild(GUILD) is not None or task.done(), 10)
        assert not task.done(), "the adapter stopped during start-up"
        yield bot
    finally:
        stop.set()
        await asyncio.wait_for(task, 6)


async def slash(
    server: FakeDiscord,
    name: str,
    options: dict[str, Any] | list[Json] | None = None,
    *,
    channel: int = CHANNEL,
    guild: int | None = GUILD,
    user: int = USER,
    permissions: str = MEMBER,
    kind: int = 2,
) -> FakeInteraction:
    payload = server.slash_command_payload(name, options, channel, guild, user, permissions)
    payload["type"] = kind
    await server.dispatch("INTERACTION_CREATE", payload)
    return server.interactions[payload["token"]]


async def shown(server: FakeDiscord, state: FakeInteraction, timeout: float = 10) -> Json:
    """The message the interaction ended with: its response, or its deferred message once edited."""

    def done() -> bool:
        if not state.callbacks or state.original is None:
            return False
        return state.callbacks[0]["type"] == 4 or bool(state.original["edits"])

    await server.wait_for(done, timeout)
    assert state.original is not None
    return state.original


def text_of(message: Json) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(p for p in parts if p)


def is_ephemeral(state: FakeInteraction) -> bool:
    return bool(int(state.callbacks[0]["data"].get("flags") or 0) & 64)


# --- pure helpers --------------------------------------------------------------------------


def test_subscribe_options_become_the_text_form(app: App) -> None:
    resolve = app.gazetteer.country_code
    args = subscribe_args(
        "KR, United States japan", "compute policy", "HyperCLOVA, -rumour", None, "08:30", resolve
    )
    assert (
        args == "KR 'United States' japan topic:compute topic:policy kw:HyperCLOVA "
        "kw:-rumour digest@08:30"
    )
    assert subscribe_args(None, None, None, "instant", None, resolve) == "instant"
    with pytest.raises(UsageError):
        subscribe_args("KR", None, None, "instant", "09:00", resolve)
    assert subscribe_args("KR", None, None, "weekly", "fri@17:00", resolve) == "KR weekly@fri@17:00"
    assert subscribe_args(None, None, None, "weekly", None, resolve) == "weekly"


def test_shard_settings_pick_the_sharded_client(tmp_path: Path) -> None:
    sharded = build_client(
        Settings(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS="1,3")  # type: ignore[call-arg]
    )
    assert isinstance(sharded, discord.AutoShardedClient)
    assert sharded.shard_count == 4 and sharded.shard_ids == [1, 3]
    plain = build_client(Settings())  # type: ignore[call-arg]
    assert not isinstance(plain, discord.AutoShardedClient)
    assert not plain.intents.message_content and not plain.intents.members
    with pytest.raises(UsageError):
        build_client(Settings(DISCORD_SHARD_IDS="1"))  # type: ignore[call-arg]


# --- commands ------------------------------------------------------------------------------


async def test_commands_sync_once_and_not_again_on_restart(server: FakeDiscord, app: App) -> None:
    async with running(server, app) as bot:
        assert bot.synced
    assert server.command_writes == 1
    names = {c["name"] for c in server.global_commands}
    assert names == {
        "ask",
        "latest",
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "digest",
        "why",
        "help",
        "status",
    }
    by_name = {c["name"]: c for c in server.global_commands}
    manage = permission_bits("manage_channels")
    assert int(by_name["subscribe"]["default_member_permissions"]) == manage
    assert int(by_name["unsubscribe"]["default_member_permissions"]) == manage
    assert by_name["ask"]["default_member_permissions"] is None
    options = {o["name"]: o for o in by_name["subscribe"]["options"]}
    assert list(options) == ["countries", "topics", "keywords", "mode", "time"]
    assert all(o["type"] == 3 and not o.get("required") for o in options.values())
    assert options["countries"]["autocomplete"] and options["topics"]["autocomplete"]
    assert by_name["unsubscribe"]["options"][0]["autocomplete"]
    assert by_name["ask"]["name_localizations"] == {"ko": KOREAN["ask"]}
    assert by_name["subscribe"]["options"][0]["name_localizations"] == {"ko": "국가"}
    assert by_name["help"]["description_localizations"]["ko"] == KOREAN["What this bot can do"]

    async with running(server, app) as again:  # a restart with the same definitions
        assert not again.synced
    assert server.command_writes == 1
    assert server.identify_count == 2


async def test_ask_is_deferred_then_answered_with_sources(server: FakeDiscord, app: App) -> None:
    async with running(server, app):
        state = await slash(server, "ask", {"question": KOREA_Q})
        message = await shown(server, state)
    assert [c["type"] for c in state.callbacks] == [5]  # deferred at once
    assert not is_ephemeral(state)
    text = text_of(message)
    assert "\\[1\\]" in text and "**Sources**" in text and "https://" in text
    assert message["allowed_mentions"] == {"parse": []}
    assert message["flags"] & 128 == 0  # no longer "thinking"


async def test_ask_streams_by_editing_at_most_every_1_5_s(
    server: FakeDiscord, db_copy: Path
) -> None:
    words = "Korea funds its own foundation models through a national program " * 2
    async with FakeOpenAI(lambda m: words.strip() + " [1].", chunk_delay=0.2) as model:
        settings = make_settings(
            server, db_copy, OPENAI_BASE_URL=model.base_url, OPENAI_API_KEY="sk-test-0123456789"
        )
        app = build_app(settings)
        try:
            async with running(server, app):
                state = await slash(server, "ask", {"question": KOREA_Q})
                await server.wait_for(
                    lambda: bool(state.original and "Sources" in text_of(state.original)), 15
                )
        finally:
            await shut(app)
    assert state.original is not None
    edits = server.matching(rf"/webhooks/\d+/{state.token}/messages/@original$", "PATCH", 200)
    assert len(edits) >= 3  # at least two partial views, then the final text
    partial_gaps = [b.t - a.t for a, b in itertools.pairwise(edits[:-1])]
    assert all(gap >= 1.45 for gap in partial_gaps), partial_gaps
    partials = [text_of(e) for e in state.original["edits"][:-1]]
    assert partials[0].endswith("…") and len(partials[0]) < len(partials[-1])
    final = text_of(state.original)
    assert "national program" in final and "\\[1\\]" in final and "…" not in final.split("\n")[0]


async def test_information_commands_and_their_visibility(server: FakeDiscord, app: App) -> None:
    async with running(server, app):
        help_ = await slash(server, "help")
        latest = await slash(server, "latest", {"filter": "KR"})
        unknown = await slash(server, "latest", {"filter": "Narnia"})
        subs = await slash(server, "subscriptions")
        digest = await slash(server, "digest")
        why = await slash(server, "why", {"link": "https://nowhere.example/x"})
        status_denied = await slash(server, "status")
        status = await slash(server, "status", user=OWNER)
        messages = [
            await shown(server, s)
            for s in (help_, latest, unknown, subs, digest, why, status_denied, status)
        ]
    help_text, latest_text, unknown_text, subs_text, digest_text, why_text, denied, ok = (
        text_of(m) for m in messages
    )
    assert "/subscribe" in help_text and is_ephemeral(help_)
    assert "Latest stories" in latest_text and "🇰🇷" in latest_text and not is_ephemeral(latest)
    assert "Narnia" in unknown_text
    assert "no subscriptions" in subs_text and is_ephemeral(subs)
    assert digest_text and not is_ephemeral(digest)
    assert "not stored that link" in why_text and is_ephemeral(why)
    assert "Only the bot's operators" in denied and is_ephemeral(status_denied)
    assert "Articles:" in ok and "Feeds:" in ok and is_ephemeral(status)
    assert all(m["allowed_mentions"] == {"parse": []} for m in messages)


async def test_subscribe_needs_manage_channels(server: FakeDiscord, app: App) -> None:
    options = {
        "countries": "KR, japan",
        "topics": "compute",
        "keywords": "HyperCLOVA",
        "time": "08:30",
    }
    async with running(server, app):
        refused = await slash(server, "subscribe", options)
        await shown(server, refused)
        accepted = await slash(server, "subscribe", options, user=MANAGER, permissions=MODERATOR)
        message = await shown(server, accepted)
    assert "Manage Channels" in text_of(refused.original or {}) and is_ephemeral(refused)
    assert "Subscribed (#" in text_of(message) and not is_ephemeral(accepted)
    [sub] = app.store.subscriptions.for_target(Target("discord", str(CHANNEL)))
    assert sub.spec.countries == ("KR", "JP") and sub.spec.topics == ("compute",)
    assert sub.spec.keywords == ("HyperCLOVA",)
    assert sub.spec.mode is Mode.DIGEST and sub.spec.digest_time == "08:30"


async def test_threads_are_targets_of_their_own(server: FakeDiscord, app: App) -> None:
    async with running(server, app):
        # Added after GUILD_CREATE: the fake lists guild channels, and threads are not those.
        server.guilds[GUILD].channels[THREAD] = {
            "id": str(THREAD),
            "type": 11,
            "guild_id": str(GUILD),
            "parent_id": str(CHANNEL),
            "owner_id": str(USER),
            "name": "a thread",
            "member_count": 1,
            "message_count": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": datetime.now(UTC).isoformat(),
                "locked": False,
            },
        }
        state = await slash(
            server, "subscribe", {"countries": "FR"}, channel=THREAD, permissions=MODERATOR
        )
        await shown(server, state)
    assert app.store.subscriptions.for_target(Target("discord", str(THREAD)))
    assert not app.store.subscriptions.for_target(Target("discord", str(CHANNEL)))


async def test_autocomplete_and_unsubscribe(server: FakeDiscord, app: App) -> None:
    target = Target("discord", str(CHANNEL))
    first = app.store.subscriptions.add(target, app_spec(app, "KR JP"))
    app.store.subscriptions.add(target, app_spec(app, "topic:compute"))

    def focused(name: str, value: str) -> list[Json]:
        return [{"name": name, "type": 3, "value": value, "focused": True}]

    async with running(server, app):
        countries = await slash(server, "subscribe", focused("countries", "KR jap"), kind=4)
        korean = await slash(server, "subscribe", focused("countries", "한국"), kind=4)
        topics = await slash(server, "subscribe", focused("topics", "comp"), kind=4)
        which = await slash(server, "unsubscribe", focused("subscription", ""), kind=4)
        for state in (countries, korean, topics, which):
            await server.wait_for(lambda s=state: bool(s.callbacks))  # type: ignore[misc]
        removed = await slash(
            server, "unsubscribe", {"subscription": str(first.id)}, permissions=MODERATOR
        )
        message = await shown(server, removed)

    def choices(state: FakeInteraction) -> list[Json]:
        assert state.callbacks[0]["type"] == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
        return list(state.callbacks[0]["data"]["choices"])

    assert choices(countries)[0]["value"] == "KR JP"
    assert "Japan" in choices(countries)[0]["name"]
    assert choices(korean)[0]["value"] == "KR"
    assert [c["value"] for c in choices(topics)] == ["compute"]
    listed = choices(which)
    assert listed[0]["value"] == "all" and listed[1]["value"] == str(first.id)
    assert "South Korea" in listed[1]["name"]
    assert f"Removed subscription #{first.id}" in text_of(message)
    assert [s.spec.topics for s in app.store.subscriptions.for_target(target)] == [("compute",)]


def app_spec(app: App, text: str) -> Any:
    from bot.core.subscribe_parse import parse_subscribe

    return parse_subscribe(text, app.gazetteer)


async def test_hostile_option_text_pings_nobody(server: FakeDiscord, app: App) -> None:
    hostile = f"@everyone <@{OWNER}> <@&{GUILD + 1}> **bold** [x](https://evil.example)"
    async with running(server, app):
        latest = await slash(server, "latest", {"filter": hostile})
        sub = await slash(server, "subscribe", {"countries": hostile}, permissions=MODERATOR)
        asked = await slash(server, "ask", {"question": hostile})
        messages = [await shown(server, s) for s in (latest, sub, asked)]
    for message in messages:
        assert message["allowed_mentions"] == {"parse": []}
        assert message["pings"] == {"users": [], "roles": [], "everyone": False}
    text = text_of(messages[0])
    assert "@everyone" not in text and "@\u200beveryone" in text
    assert "\\*\\*bold\\*\\*" in text
    assert is_ephemeral(sub)


async def test_paused_channel_is_told_why(server: FakeDiscord, app: App) -> None:
    target = Target("discord", str(OTHER))
    app.store.subscriptions.add(target, app_spec(app, "KR"))
    app.store.subscriptions.set_paused(target, True, "forbidden: Missing Permissions")
    async with running(server, app):
        state = await slash(server, "help", channel=OTHER)
        message = await shown(server, state)
    text = text_of(message)
    assert "Alerts to this channel are paused: forbidden: Missing Permissions" in text


async def test_mute_button_narrows_the_channels_subscriptions(
    server: FakeDiscord, app: App
) -> None:
    target = Target("discord", str(CHANNEL))
    app.store.subscriptions.add(target, app_spec(app, "KR JP"))
    app.store.subscriptions.add(target, app_spec(app, "KR"))
    app.store.subscriptions.add(target, app_spec(app, "topic:compute"))  # every country

    async def click(custom_id: str, permissions: str) -> FakeInteraction:
        payload = server.slash_command_payload("x", None, CHANNEL, GUILD, MANAGER, permissions)
        payload.update(type=3, data={"custom_id": custom_id, "component_type": 2})
        await server.dispatch("INTERACTION_CREATE", payload)
        return server.interactions[payload["token"]]

    async with running(server, app):
        refused = await click("mute:country:KR", MEMBER)
        await shown(server, refused)
        muted = await click("mute:country:KR", MODERATOR)
        message = await shown(server, muted)
    assert is_ephemeral(refused)
    assert "Muted South Korea" in text_of(message)
    narrowed, broad = sorted(
        (s.spec for s in app.store.subscriptions.for_target(target)), key=lambda s: len(s.countries)
    )
    assert narrowed.countries == ("JP",)
    assert "KR" not in broad.countries and "JP" in broad.countries  # as on Telegram
    assert broad.topics == ("compute",)


# --- messages ------------------------------------------------------------------------------


async def test_mention_and_dm_are_answered(
    server: FakeDiscordWithDMs, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.adapters.discord_bot")
    async with running(server, app):
        mention = server.message_payload(CHANNEL, f"<@{server.bot_id}> {KOREA_Q}", USER)
        await server.dispatch("MESSAGE_CREATE", mention)
        plain = server.message_payload(CHANNEL, "just chatting", USER)
        await server.dispatch("MESSAGE_CREATE", plain)
        dm = server.message_payload(DM_CHANNEL, "/latest JP", USER)
        await server.dispatch("MESSAGE_CREATE", dm)
        blocked = server.message_payload(BLOCKED_DM, KOREA_Q, BLOCKER)
        await server.dispatch("MESSAGE_CREATE", blocked)
        await server.wait_for(
            lambda: bool(server.messages[CHANNEL]) and bool(server.messages[DM_CHANNEL]), 10
        )
        await server.wait_for(lambda: "cannot reply" in caplog.text, 5)
    [reply] = server.messages[CHANNEL]
    assert int(reply["message_reference"]["message_id"]) == int(mention["id"])
    assert reply["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert "\\[1\\]" in text_of(reply)
    [dm_reply] = server.messages[DM_CHANNEL]
    assert "Latest stories: JP" in text_of(dm_reply)
    assert server.messages[BLOCKED_DM] == []


# --- resilience ----------------------------------------------------------------------------


async def test_gateway_disconnect_resumes(server: FakeDiscord, app: App) -> None:
    async with running(server, app) as bot:
        resumed = asyncio.Event()
        bot.client.event(_on_resumed(resumed))
        await server.disconnect(resumable=True)
        state = await slash(server, "help")  # sent while away: replayed after RESUME
        await asyncio.wait_for(resumed.wait(), 10)
        await shown(server, state)
    assert server.identify_count == 1
    assert server.resume_count == 1


def _on_resumed(event: asyncio.Event) -> Any:
    async def on_resumed() -> None:
        event.set()

    return on_resumed


async def test_rest_429s_are_waited_out(server: FakeDiscord, app: App) -> None:
    async with running(server, app):
        server.storm_429(r"/interactions/\d+/[^/]+/callback$", retry_after=0.3, n=2)
        first = await slash(server, "help")
        await shown(server, first)
        server.storm_429(r"/webhooks/", retry_after=0.3, n=1, global_=True)
        second = await slash(server, "ask", {"question": KOREA_Q})
        await shown(server, second)
    assert server.rejected == 3
    assert "/subscribe" in text_of(first.original or {})
    assert "\\[1\\]" in text_of(second.original or {})


async def test_late_interaction_is_logged_not_fatal(
    server: FakeDiscord, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.adapters.discord_bot")
    async with running(server, app):
        server.interaction_ack_s = 0.0  # everything arrives past its 3 s window
        late = await slash(server, "help")
        await server.wait_for(lambda: "interaction expired" in caplog.text, 5)
        server.interaction_ack_s = discord_api.INTERACTION_ACK_S
        again = await slash(server, "help")
        await shown(server, again)
    assert late.callbacks == []
    assert server.matching(r"/callback$", "POST", 404)


async def test_guild_removal_pauses_and_rejoin_resumes(server: FakeDiscord, app: App) -> None:
    channel, other = Target("discord", str(CHANNEL)), Target("discord", str(OTHER))
    app.store.subscriptions.add(channel, app_spec(app, "KR"))
    app.store.subscriptions.add(other, app_spec(app, "JP"))
    elsewhere = Target("discord", "999")
    app.store.subscriptions.add(elsewhere, app_spec(app, "US"))
    async with running(server, app) as bot:
        await server.remove_guild(GUILD)
        await server.wait_for(lambda: bot.client.get_guild(GUILD) is None)
        await server.wait_for(lambda: all(_paused(app, t) for t in (channel, other)))
        assert not _paused(app, elsewhere)
        assert app.store.subscriptions.for_target(channel)[0].paused_reason == GUILD_REMOVED
        await asyncio.wait_for(bot.client.wait_until_ready(), 5)  # joins count after READY
        server.guilds[GUILD].left = False
        joined = server.guild_payload(GUILD)
        del joined["unavailable"]  # a join, not an outage ending
        await server.dispatch("GUILD_CREATE", joined)
        await server.wait_for(lambda: not any(_paused(app, t) for t in (channel, other)))


def _paused(app: App, target: Target) -> bool:
    return app.store.subscriptions.for_target(target)[0].paused


async def test_run_discord_uses_the_settings_and_stops_cleanly(
    server: FakeDiscord, app: App
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(app, stop))
    await server.wait_for(lambda: server.identify_count == 1, 10)
    state = await slash(server, "help")
    await shown(server, state)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5
    assert server.identify_payloads[0]["intents"] & discord_api.PRIVILEGED_INTENTS == 0


async def test_shard_subset_identifies_with_its_shard(server: FakeDiscord, db_copy: Path) -> None:
    app = build_app(make_settings(server, db_copy, DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="1"))
    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(app, stop))
    try:
        await server.wait_for(lambda: server.identify_count == 1, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 6)
        await shut(app)
    assert server.identify_payloads[0]["shard"] == [1, 2]


async def test_subscribe_without_options_offers_buttons(server: FakeDiscord, app: App) -> None:
    async with running(server, app):
        menu = await slash(server, "subscribe", permissions=MODERATOR)
        message = await shown(server, menu)
        payload = server.slash_command_payload("x", None, CHANNEL, GUILD, MANAGER, MODERATOR)
        payload.update(type=3, data={"custom_id": "sub:topic:compute", "component_type": 2})
        await server.dispatch("INTERACTION_CREATE", payload)
        clicked = await shown(server, server.interactions[payload["token"]])
    ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    assert "sub:KR" in ids and "sub:topic:compute" in ids and len(ids) <= 25
    assert is_ephemeral(menu)
    assert "Subscribed" in text_of(clicked)
    [sub] = app.store.subscriptions.for_target(Target("discord", str(CHANNEL)))
    assert sub.spec.topics == ("compute",)


# --- the real process ----------------------------------------------------------------------


async def test_real_process_answers_alerts_once_and_exits_on_sigterm(
    server: FakeDiscord, db_copy: Path, tmp_path: Path
) -> None:
    """`python -m bot run`: /ask answered, /subscribe, a feed item alerted once, SIGTERM."""
    title = "National Assembly in Seoul passes the AI Basic Act"
    async with FeedServer() as feeds:
        feeds.set_feed("/kr.xml", make_rss("Example Wire", []))
        feed_list = tmp_path / "feeds.txt"
        feed_list.write_text(feeds.url("/kr.xml") + "\n")
        env = cli_env(
            db_copy,
            DISCORD_BOT_TOKEN=server.token,
            DISCORD_API_BASE_URL=f"http://127.0.0.1:{server.port}",  # /api/v10 is implied
            DISCORD_GATEWAY_URL=server.gateway_url,
            SW_FEEDS_FILE=str(feed_list),
            SW_POLL_SECONDS="0.5",
        )
        log_path = tmp_path / "stderr.log"
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot", "run"),
                env=env,
                cwd=str(tmp_path),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log_file,
            )
            try:
                await server.wait_for(lambda: server.identify_count == 1, 30)
                state = await slash(server, "ask", {"question": KOREA_Q})
                assert "\\[1\\]" in text_of(await shown(server, state, timeout=15))
                sub = await slash(server, "subscribe", {"countries": "KR"}, permissions=MODERATOR)
                assert "Subscribed" in text_of(await shown(server, sub))

                feeds.set_feed(
                    "/kr.xml",
                    make_rss(
                        "Example Wire",
                        [
                            (
                                title,
                                "https://news.example/kr-basic-act",
                                "South Korean lawmakers approved the AI Basic Act, a national "
                                "law on artificial intelligence safety and industry support.",
                            )
                        ],
                    ),
                )

                def alerts() -> list[Json]:
                    return [
                        m
                        for m in server.messages[CHANNEL]
                        if m["source"] == "channel" and title in text_of(m)
                    ]

                await server.wait_for(lambda: bool(alerts()), 20)
                await asyncio.sleep(1.5)  # three more polls: nothing is sent twice
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 5)
                took = time.monotonic() - started
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    err = log_path.read_bytes()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert took < 5
    [alert] = alerts()
    assert alert["allowed_mentions"] == {"parse": []}
    assert alert["embeds"][0]["url"] == "https://news.example/kr-basic-act"
    assert alert["nonce"] and alert["enforce_nonce"]
    assert server.command_writes == 1
    assert b"Traceback" not in err
    assert server.token.encode() not in err
