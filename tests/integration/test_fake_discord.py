"""The real discord.py client against tests/fakes/discord_api.py.

These prove the fake is faithful enough to build the Discord adapter's tests and benchmarks
on: login and gateway handshake, message sends with allowed_mentions and nonces, slash
commands end to end, 429 handling, resume, command sync, and Discord's error answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord_api import (
    MISSING_ACCESS,
    MISSING_PERMISSIONS,
    SEND_MESSAGES,
    FakeDiscord,
    RequestRecord,
)

pytestmark = pytest.mark.timeout(60)

GUILD = 1_300_000_000_000_000_000
CHANNEL = GUILD + 10
LOCKED = GUILD + 11
OTHER = GUILD + 12
OWNER = 1_300_000_000_000_000_500
USER = 1_300_000_000_000_000_600


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        locked = {
            "id": LOCKED,
            "permission_overwrites": [
                {"id": str(GUILD + 1), "type": 0, "allow": "0", "deny": str(SEND_MESSAGES)}
            ],
        }
        fake.add_guild(GUILD, channels=[CHANNEL, locked, OTHER], owner_id=OWNER, members=[USER])
        fake.patch_client()
        yield fake


def make_client() -> discord.Client:
    return discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.2)


@contextlib.asynccontextmanager
async def running(server: FakeDiscord, client: discord.Client) -> AsyncIterator[discord.Client]:
    """Start the client for real and hand it over once on_ready has fired."""
    task = asyncio.create_task(client.start(server.token))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when="FIRST_COMPLETED")
        assert ready in done, task.exception() if task.done() else "client never became ready"
        yield client
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


def text_channel(client: discord.Client, channel_id: int = CHANNEL) -> discord.TextChannel:
    channel = client.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


def is_message_post(record: RequestRecord) -> bool:
    return record.method == "POST" and record.path == f"/channels/{CHANNEL}/messages"


async def test_login_ready_and_guild_create(server: FakeDiscord) -> None:
    client = make_client()
    fired: list[str] = []

    @client.event
    async def on_ready() -> None:
        fired.append("ready")

    async with running(server, client):
        assert fired == ["ready"]
        assert client.user is not None and client.user.id == server.bot_id
        assert client.application_id == server.application_id
        guild = client.get_guild(GUILD)
        assert guild is not None and guild.owner_id == OWNER
        assert guild.me is not None
        assert {c.id for c in guild.text_channels} == {CHANNEL, LOCKED, OTHER}
        perms = text_channel(client, LOCKED).permissions_for(guild.me)
        assert perms.view_channel and not perms.send_messages
        await server.wait_for(lambda: server.heartbeat_count >= 1)
    paths = [r.path for r in server.log]
    assert paths[:2] == ["/users/@me", "/oauth2/applications/@me"]
    assert server.identify_count == 1
    assert server.gateway_connects[0]["compress"] == "zlib-stream"


async def test_allowed_mentions_none_reaches_the_server(server: FakeDiscord) -> None:
    async with running(server, make_client()) as client:
        channel = text_channel(client)
        quiet = await channel.send(
            f"<@{OWNER}> @everyone news", allowed_mentions=discord.AllowedMentions.none()
        )
        loud = await channel.send(f"<@{OWNER}> news")
    first, second = server.messages[CHANNEL]
    assert first["allowed_mentions"] == {"parse": []}
    assert first["pings"] == {"users": [], "roles": [], "everyone": False}
    assert quiet.mentions == []
    assert second["allowed_mentions"] is None
    assert second["pings"]["users"] == [OWNER]
    assert [m.id for m in loud.mentions] == [OWNER]


async def test_enforced_nonce_returns_the_first_message(server: FakeDiscord) -> None:
    async with running(server, make_client()) as client:
        channel = text_channel(client)
        first = await channel.send("once", nonce=424242)
        again = await channel.send("once", nonce=424242)
        # A lost response followed by a retry with the same nonce also yields one message.
        server.drop_response_next(rf"/channels/{CHANNEL}/messages$")
        with pytest.raises(aiohttp.ClientError):
            await channel.send("lost answer", nonce=777)
        retried = await channel.send("lost answer", nonce=777)
    assert again.id == first.id
    contents = [m["content"] for m in server.messages[CHANNEL]]
    assert contents == ["once", "lost answer"]
    assert server.messages[CHANNEL][0]["enforce_nonce"] is True
    assert retried.id == server.messages[CHANNEL][1]["id"]
    assert server.nonce_hits == 2
    assert [r.status for r in server.log if is_message_post(r)] == [200, 200, 0, 200]


async def test_slash_command_reaches_handler_and_replies(server: FakeDiscord) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)
    seen: list[tuple[int, str, bool]] = []

    @tree.command(name="ask", description="Ask the bot")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        seen.append((interaction.user.id, question, interaction.permissions.administrator))
        await interaction.response.send_message(f"answer to {question}")
        await interaction.followup.send("sources: none", wait=True)

    @tree.command(name="slow", description="Deferred answer")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="done thinking")

    async with running(server, client):
        payload = server.slash_command_payload("ask", {"question": "who"}, CHANNEL, GUILD, USER)
        await server.dispatch("INTERACTION_CREATE", payload)
        state = server.interactions[payload["token"]]
        await server.wait_for(lambda: len(state.followups) == 1)

        deferred = server.slash_command_payload("slow", None, CHANNEL, GUILD, USER, "0")
        await server.dispatch("INTERACTION_CREATE", deferred)
        slow_state = server.interactions[deferred["token"]]
        await server.wait_for(lambda: bool(slow_state.original and slow_state.original["edits"]))

    assert seen == [(USER, "who", True)]
    assert [c["type"] for c in state.callbacks] == [4]
    assert state.callbacks[0]["data"]["content"] == "answer to who"
    assert state.followups[0]["content"] == "sources: none"
    assert [c["type"] for c in slow_state.callbacks] == [5]
    assert slow_state.original is not None
    assert slow_state.original["content"] == "done thinking"
    sources = [(m["source"], m["content"]) for m in server.messages[CHANNEL]]
    assert sources == [
        ("interaction", "answer to who"),
        ("followup", "sources: none"),
        ("interaction", "done thinking"),
    ]
    callback_path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    assert server.matching(callback_path, "POST", 200)


async def test_late_interaction_ack_is_unknown_interaction(server: FakeDiscord) -> None:
    server.interaction_ack_s = 0.2
    client = make_client()
    tree = app_commands.CommandTree(client)
    errors: list[int] = []

    @tree.command(name="late", description="Answers too late")
    async def late(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("too late")
        except discord.NotFound as exc:
            errors.append(exc.code)

    async with running(server, client):
        await server.dispatch(
            "INTERACTION_CREATE", server.slash_command_payload("late", None, CHANNEL, GUILD, USER)
        )
        await server.wait_for(lambda: bool(errors))
    assert errors == [10062]
    assert server.messages[CHANNEL] == []


async def test_429_with_via_is_retried(server: FakeDiscord) -> None:
    async with running(server, make_client()) as client:
        server.storm_429(rf"/channels/{CHANNEL}/messages$", retry_after=0.25, n=2)
        started = time.monotonic()
        await text_channel(client).send("after the storm")
        waited = time.monotonic() - started
    assert [m["content"] for m in server.messages[CHANNEL]] == ["after the storm"]
    assert [r.status for r in server.log if is_message_post(r)] == [429, 429, 200]
    assert server.rejected == 2
    assert waited >= 0.5


async def test_message_bucket_is_honoured_by_discord_py(server: FakeDiscord) -> None:
    async with running(server, make_client()) as client:
        channel = text_channel(client)
        await asyncio.gather(*(channel.send(f"burst {i}") for i in range(7)))
    assert len(server.messages[CHANNEL]) == 7
    assert server.rejected == 0
    assert server.max_in_window(is_message_post, 5.0) == 5
    times = [r.t for r in server.log if is_message_post(r)]
    assert times[-1] - times[0] >= 5.0


async def test_raw_rate_limit_answers(server: FakeDiscord) -> None:
    headers = {"Authorization": f"Bot {server.token}"}
    url = f"{server.rest_base}/channels/{CHANNEL}/messages"
    async with aiohttp.ClientSession(headers=headers) as http:
        statuses = []
        for i in range(6):
            async with http.post(url, json={"content": f"raw {i}"}) as resp:
                statuses.append(resp.status)
                last_headers = resp.headers
                last_body = await resp.json()
        assert statuses == [200] * 5 + [429]
        assert last_headers["Content-Type"] == "application/json"
        assert last_headers["Via"]
        assert last_headers["X-RateLimit-Scope"] == "user"
        assert last_headers["X-RateLimit-Limit"] == "5"
        assert last_headers["X-RateLimit-Remaining"] == "0"
        assert last_body["global"] is False
        assert 4.0 < last_body["retry_after"] <= 5.0
        assert float(last_headers["X-RateLimit-Reset-After"]) == last_body["retry_after"]

        global_statuses = []
        for _ in range(55):
            async with http.get(f"{server.rest_base}/users/@me") as resp:
                global_statuses.append(resp.status)
                if resp.status == 429:
                    body = await resp.json()
                    assert body["global"] is True
                    assert resp.headers["X-RateLimit-Global"] == "true"
        async with http.get(f"{server.rest_base}/users/@me", headers={"Authorization": "x"}) as r:
            assert r.status == 401
    # The 5 accepted message posts already count toward the global 50/s.
    assert global_statuses.count(200) <= 45
    assert 429 in global_statuses
    assert server.max_in_window(lambda r: r.status != 429 and r.status != 401, 1.0) <= 50


async def test_resumable_disconnect_resumes_and_replays(server: FakeDiscord) -> None:
    client = make_client()
    received: list[str] = []
    resumed = asyncio.Event()

    @client.event
    async def on_message(message: discord.Message) -> None:
        received.append(message.content)

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    async with running(server, client):
        await server.disconnect(resumable=True)
        note = server.message_payload(CHANNEL, f"<@{server.bot_id}> while away", USER)
        await server.dispatch("MESSAGE_CREATE", note)
        await asyncio.wait_for(resumed.wait(), 5)
        await server.wait_for(lambda: bool(received))
        # The session keeps working after the resume.
        await text_channel(client).send("back")
    assert server.identify_count == 1
    assert server.resume_count == 1
    assert received[0] == f"<@{server.bot_id}> while away"
    assert received.count(f"<@{server.bot_id}> while away") == 1


class QuickReidentify(discord.Client):
    """discord.py sleeps 5 s before a non-initial IDENTIFY; its documented hook skips that."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


async def test_non_resumable_disconnect_identifies_again(server: FakeDiscord) -> None:
    client = QuickReidentify(intents=discord.Intents.default(), guild_ready_timeout=0.2)
    async with running(server, client):
        await server.disconnect(resumable=False)
        await server.wait_for(lambda: server.identify_count == 2)
        await client.wait_until_ready()
        assert client.get_guild(GUILD) is not None
    assert server.resume_count == 0
    assert server.invalid_resume_count == 1


async def test_tree_sync_uses_bulk_overwrite(server: FakeDiscord) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)

    @tree.command(name="news", description="Latest national AI news")
    async def news(interaction: discord.Interaction, country: str | None = None) -> None:
        await interaction.response.send_message("none")

    async with running(server, client):
        synced = await tree.sync()
        tree.copy_global_to(guild=discord.Object(GUILD))
        await tree.sync(guild=discord.Object(GUILD))
        again = await tree.sync()
    assert [c.name for c in synced] == ["news"]
    assert again[0].id == synced[0].id
    assert server.global_command_writes == 2
    assert server.guild_command_writes[GUILD] == 1
    assert server.command_writes == 3
    assert [c["name"] for c in server.guild_commands[GUILD]] == ["news"]
    assert server.matching(rf"^/applications/{server.application_id}/commands$", "PUT", 200)


async def test_discord_errors_surface_as_discord_py_exceptions(server: FakeDiscord) -> None:
    async with running(server, make_client()) as client:
        channel = text_channel(client)
        server.fail_next(r"/messages$", 403, body=MISSING_PERMISSIONS)
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.send("x")
        assert forbidden.value.code == 50013

        server.fail_next(r"/messages$", 404, body={"code": 10003, "message": "Unknown Channel"})
        with pytest.raises(discord.NotFound) as missing:
            await channel.send("x")
        assert missing.value.code == 10003

        other = text_channel(client, OTHER)
        server.fail_next(r"/messages$", 502)
        await other.send("after a 502")  # discord.py retries 5xx by itself

        with pytest.raises(discord.Forbidden) as denied:  # a real permission overwrite
            await text_channel(client, LOCKED).send("x")
        assert denied.value.code == MISSING_PERMISSIONS["code"]

        with pytest.raises(discord.HTTPException) as too_long:
            await other.send("y" * 2001)
        assert too_long.value.code == 50035

        await server.remove_guild(GUILD)
        await server.wait_for(lambda: client.get_guild(GUILD) is None)
        with pytest.raises(discord.Forbidden) as gone:
            await channel.send("x")
        assert gone.value.code == MISSING_ACCESS["code"]
    assert server.messages[CHANNEL] == []
    assert [m["content"] for m in server.messages[OTHER]] == ["after a 502"]


async def test_message_content_needs_the_intent_unless_mentioned(server: FakeDiscord) -> None:
    client = make_client()
    contents: list[str] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.id == USER:
            contents.append(message.content)

    async with running(server, client):
        await server.dispatch("MESSAGE_CREATE", server.message_payload(CHANNEL, "plain", USER))
        mention = f"<@{server.bot_id}> hello"
        await server.dispatch("MESSAGE_CREATE", server.message_payload(CHANNEL, mention, USER))
        await server.wait_for(lambda: len(contents) == 2)
    assert contents == ["", mention]


async def test_stop_restores_discord_py_defaults() -> None:
    before = discord.http.Route.BASE
    async with FakeDiscord() as fake:
        fake.patch_client()
        assert fake.rest_base == discord.http.Route.BASE
    assert before == discord.http.Route.BASE
