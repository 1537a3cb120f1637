"""Discord: `/ask` round trip and alert fan-out, real discord.py against the local fake.

Run: `python tests/benchmarks/bench_discord.py [--questions 200] [--channels 200]`.

1. Interaction round trip: an INTERACTION_CREATE for `/ask` is pushed on the gateway; the clock
   stops when the server records the PATCH that puts the answer into the deferred message
   (the "follow-up"). Questions go one after another, extractive answers from a real store.
2. Fan-out: one story matches subscriptions in N channels of one server; the delivery worker
   sends through DiscordAlertSender. The achieved send rate is shown as a share of Discord's
   global limit of 50 requests/s (the fake enforces it, and the per-channel 5 per 5 s).
Exits 1 when the round trip p95 passes 250 ms or fan-out uses less than half the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.adapters.discord_bot import DiscordBot
from bot.adapters.discord_sender import open_discord_sender
from bot.app import App, build_app
from bot.config import Settings
from bot.core.models import FeedEntry, SubscriptionSpec, Target
from tests.fakes.discord_api import GLOBAL_LIMIT, FakeDiscord

GUILD = 1_500_000_000_000_000_000
USER = 1_500_000_000_000_000_600
ROUND_TRIP_P95_TARGET_MS = 250.0
FANOUT_SHARE_TARGET = 0.5
QUESTIONS = (
    "What is South Korea doing to build its own AI model?",
    "Which countries fund national GPU clusters?",
    "What is France doing about sovereign AI?",
    "한국 독자 AI 파운데이션 모델 사업은?",
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def settings_for(server: FakeDiscord, db: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        SW_DB_PATH=db,
        DISCORD_BOT_TOKEN=server.token,
        DISCORD_API_BASE_URL=server.rest_base,
        DISCORD_GATEWAY_URL=server.gateway_url,
    )


async def round_trips(server: FakeDiscord, app: App, channel: int, n: int) -> list[float]:
    bot = DiscordBot(app)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.serve(server.token, stop))
    await server.wait_for(lambda: bot.client.get_guild(GUILD) is not None, 10)
    times: list[float] = []
    try:
        for i in range(n):
            question = QUESTIONS[i % len(QUESTIONS)]
            payload = server.slash_command_payload(
                "ask", {"question": question}, channel, GUILD, USER, "8"
            )
            started = time.monotonic()
            await server.dispatch("INTERACTION_CREATE", payload)
            state = server.interactions[payload["token"]]
            await server.wait_for(
                lambda s=state: bool(s.original and s.original["edits"]),  # type: ignore[misc]
                10,
                0.001,
            )
            path = "/messages/@original"
            edit = next(
                r
                for r in server.log
                if r.method == "PATCH" and payload["token"] in r.path and r.path.endswith(path)
            )
            times.append((edit.t - started) * 1000)
    finally:
        stop.set()
        await asyncio.wait_for(task, 6)
    return times


async def fan_out(server: FakeDiscord, app: App, channels: list[int]) -> tuple[float, int, int]:
    """Seconds from first to last alert post, the busiest second, and 429s seen."""
    for cid in channels:
        app.store.subscriptions.add(
            Target("discord", str(cid)), SubscriptionSpec(countries=("KR",))
        )
    entry = FeedEntry(
        url="https://news.example/fanout",
        title="South Korea funds a national GPU centre for sovereign AI models",
        summary="The science ministry will pay for a national GPU centre so that Korean "
        "companies can train sovereign foundation models.",
        published=datetime.now(UTC),
        source="Example Wire",
        feed_url="https://news.example/feed.xml",
    )
    counts = app.ingestor.ingest([entry], source_id=None)
    assert counts.relevant == 1, counts
    sender = await open_discord_sender(server.token, api_base_url=server.rest_base)
    rejected_before = server.rejected
    try:
        worker = app.delivery_worker({"discord": sender})
        stats = await worker.drain_once(max_wait=60)
    finally:
        await sender.close()
    wanted = {f"/channels/{c}/messages" for c in channels}
    posts = [r for r in server.log if r.method == "POST" and r.path in wanted and r.status == 200]
    assert len(posts) == len(channels), (len(posts), stats)
    alerts = [[m for m in server.messages[c] if m["source"] == "channel"] for c in channels]
    assert all(len(a) == 1 for a in alerts)
    span = posts[-1].t - posts[0].t
    busiest = server.max_in_window(
        lambda r: r.method == "POST" and r.path in wanted and r.status == 200, 1.0
    )
    return span, busiest, server.rejected - rejected_before


async def run(questions: int, n_channels: int) -> int:
    channels = [GUILD + 100 + i for i in range(n_channels)]
    async with FakeDiscord() as server:
        server.add_guild(GUILD, channels=channels, members=[USER])
        with server.patched(), tempfile.TemporaryDirectory() as tmp:
            app = build_app(settings_for(server, Path(tmp) / "sw.db"))
            try:
                times = await round_trips(server, app, channels[0], questions)
                span, busiest, rejected = await fan_out(server, app, channels)
            finally:
                app.close()
    p50, p95 = pct(times, 0.5), pct(times, 0.95)
    rate = (n_channels - 1) / span if span > 0 else float("inf")
    share = rate / GLOBAL_LIMIT[0]
    print(f"/ask round trip over {questions} questions (INTERACTION_CREATE -> answer edit):")
    print(
        f"  p50 {p50:.1f} ms  p95 {p95:.1f} ms  mean {statistics.fmean(times):.1f} ms  "
        f"max {max(times):.1f} ms"
    )
    print(f"alert fan-out to {n_channels} channels:")
    print(
        f"  {span:.2f} s first to last post, {rate:.1f} posts/s = {share:.2f} of the "
        f"{GLOBAL_LIMIT[0]} req/s global limit; busiest second {busiest} accepted, 429s {rejected}"
    )
    ok = p95 <= ROUND_TRIP_P95_TARGET_MS and share >= FANOUT_SHARE_TARGET and busiest <= 50
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--channels", type=int, default=200)
    args = parser.parse_args()
    return asyncio.run(run(args.questions, args.channels))


if __name__ == "__main__":
    sys.exit(main())
