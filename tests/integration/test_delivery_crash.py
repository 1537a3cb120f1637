"""Kill -9 the real process while it delivers 1,000 alerts to a fake platform, then restart.

Every alert must arrive; Discord (nonce + enforce_nonce) must show no repeat; Telegram, which
has no idempotency key, may repeat only deliveries that were in flight at the kill, and each of
those must be flagged uncertain. Delivery resumes promptly after the restart.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import cli_env
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram, Limits
from tests.integration.delivery_support import add_story, add_target, make_store, queue_alerts

POLL_SECONDS = 60.0  # deliveries must resume within a tenth of this after a restart
KILL_AFTER = 300


async def start(db: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    log = (db.parent / f"bot-{time.monotonic_ns()}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "deliver",
        *args,
        env=cli_env(db, SW_POLL_SECONDS=str(POLL_SECONDS), SW_LOG_LEVEL="WARNING", **env),
        cwd=db.parent,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )


async def until(predicate: Callable[[], bool], timeout: float) -> float:
    """Wait for a condition on the fake's state; seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def outbox(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "SELECT o.*, t.chat_id FROM outbox o JOIN targets t ON t.id = o.target_id"
        ).fetchall()
    finally:
        conn.close()


async def kill_and_restart(
    db: Path,
    delivered: Callable[[], int],
    total: int,
    hang: Callable[[], None],
    **env: str,
) -> tuple[int, float, float]:
    """Run `deliver`, SIGKILL it after KILL_AFTER deliveries, restart with `deliver --once`.

    Shortly before the kill, `hang` makes the fake keep a few messages but hold their answers,
    so some deliveries are surely in flight when the process dies. Returns (rows in flight at
    the kill, seconds from the restart to its first delivery, seconds to the last).
    """
    first = await start(db, **env)
    try:
        await until(lambda: delivered() >= KILL_AFTER - 20, timeout=90)
        hang()
        await until(lambda: delivered() >= KILL_AFTER, timeout=30)
        await asyncio.sleep(0.05)
    finally:
        first.kill()
        await first.wait()
    assert first.returncode == -9
    in_flight = sum(1 for r in outbox(db) if r["state"] == "in_flight")
    at_kill = delivered()
    assert at_kill < total, "the kill came too late to prove anything"
    await asyncio.sleep(0.3)  # answers the dead process never read are settled by now
    before = delivered()
    second = await start(db, "--once", **env)
    resumed = await until(lambda: delivered() > before, timeout=POLL_SECONDS)
    finished = await until(lambda: delivered() >= total, timeout=120)
    assert await asyncio.wait_for(second.wait(), 60) == 0
    return in_flight, resumed, finished


@pytest.mark.slow
async def test_telegram_kill_9_mid_delivery(tmp_path: Path) -> None:
    db = tmp_path / "store" / "sw.db"
    store = make_store(db)
    chats = [20_000 + i for i in range(1000)]
    targets = [add_target(store, "telegram", str(c)) for c in chats]
    assert queue_alerts(store, add_story(store, 1), targets) == 1000
    store.close()
    # Paid broadcast: up to 1,000 messages/s overall, so many sends are in flight at the kill.
    async with FakeTelegram(limits=Limits(global_count=1000)) as tg:

        def delivered() -> int:
            return sum(1 for c in chats if tg.sent_messages(c))

        in_flight, resumed, _ = await kill_and_restart(
            db,
            delivered,
            1000,
            lambda: tg.drop_response_next("sendMessage", n=5, hang=30.0),
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_BASE_URL=tg.base_url,
            SW_TELEGRAM_PAID_BROADCAST="true",
        )
        counts = {c: len(tg.sent_messages(c)) for c in chats}
        rejected = tg.rejected
    assert all(n >= 1 for n in counts.values())  # none lost
    repeated = {str(c) for c, n in counts.items() if n > 1}
    assert sum(counts.values()) - 1000 <= in_flight
    state = {r["chat_id"]: r for r in outbox(db)}
    assert all(state[c]["uncertain"] == 1 for c in repeated)  # every repeat is flagged
    assert all(r["state"] == "sent" for r in state.values())
    assert max(counts.values()) <= 2
    assert in_flight >= 5 and len(repeated) >= 5  # the held messages were sent once more
    assert resumed <= POLL_SECONDS / 10
    assert rejected == 0


@pytest.mark.slow
async def test_discord_kill_9_mid_delivery(tmp_path: Path) -> None:
    db = tmp_path / "store" / "sw.db"
    store = make_store(db)
    guild = 7_000
    channels = [guild + 1 + i for i in range(200)]
    targets = [add_target(store, "discord", str(c)) for c in channels]
    for n in range(5):
        queue_alerts(store, add_story(store, n), targets)
    store.close()
    async with FakeDiscord() as dc:
        dc.add_guild(guild, channels=channels)

        def delivered() -> int:
            return sum(len(dc.messages[c]) for c in channels)

        in_flight, resumed, _ = await kill_and_restart(
            db,
            delivered,
            1000,
            lambda: dc.drop_response_next(r"^/channels/\d+/messages$", n=5, hang_s=30.0),
            DISCORD_BOT_TOKEN=dc.token,
            DISCORD_API_BASE_URL=dc.rest_base,
        )
        per_channel = {c: len(dc.messages[c]) for c in channels}
        nonces = Counter(m["nonce"] for c in channels for m in dc.messages[c])
        rejected, nonce_hits = dc.rejected, dc.nonce_hits
    assert set(per_channel.values()) == {5}  # every alert, no repeat
    assert max(nonces.values()) == 1 and len(nonces) == 1000
    assert all(r["state"] == "sent" for r in outbox(db))
    assert resumed <= POLL_SECONDS / 10
    assert rejected < 100
    assert 5 <= nonce_hits <= in_flight  # the held messages were resent, and absorbed
