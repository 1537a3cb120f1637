"""Delivery against local fake platforms that enforce the published limits and answer 429.

Run: `python tests/benchmarks/bench_delivery.py [--full] [--only NAME ...]`.

- fanout:  one alert to 1,000 private Telegram chats: steady messages/s ÷ 30 (≥ 0.95, no 429)
- group:   60 alerts to one Telegram group: most accepted in any 60 s window ÷ 20 (0.9..1.0).
           Without --full the fake and the limiter both run on a clock ten times faster (the
           fake enforces the scaled windows exactly as the real ones); --full takes 3 real min.
- private: 10 alerts to one private chat: most in any 1 s ÷ 1 (≤ 1.0)
- discord: 3 alerts to each of 40 Discord channels: requests/s ÷ min(50, 40) (≥ 0.85), at
           most one 429 per channel
- match:   one story against 100,000 subscriptions (≤ 50 ms)
- fresh:   items published at random times in a local feed, polled every 2 s by the real
           poller and delivered by the real worker (one event loop) to 60 subscribed private
           chats on the fake Telegram: p95 from publication to the item's last delivery
           ÷ (poll interval + chats / 30 s) (≤ 1.1)

Prints one line per benchmark and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import discord.http

from bot.adapters.discord_sender import open_discord_sender
from bot.adapters.telegram_sender import open_telegram_sender
from bot.app import build_app
from bot.config import Settings
from bot.core.deliver.match import make_matcher
from bot.core.deliver.ratelimit import TELEGRAM_LIMITS
from bot.core.deliver.worker import DeliveryWorker, PlatformPolicy, WorkerConfig
from bot.core.fetch import FeedFetcher, FetchLimits
from bot.core.models import Subscription, SubscriptionSpec, Target
from bot.core.ports import NewArticle, StoryCandidate
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.feed_server import FeedServer, make_rss
from tests.fakes.telegram_api import FakeTelegram, Limits
from tests.integration.delivery_support import (
    add_story,
    add_target,
    make_store,
    queue_alerts,
)

COUNTRIES = [
    "KR",
    "JP",
    "CN",
    "IN",
    "FR",
    "DE",
    "GB",
    "US",
    "EU",
    "AE",
    "SA",
    "SG",
    "CA",
    "IL",
    "IT",
    "ES",
    "NL",
    "SE",
    "CH",
    "TW",
    "VN",
    "ID",
    "BR",
    "MX",
    "AU",
    "NZ",
    "PL",
]
TOPICS = ("models", "compute", "policy", "funding", "partnerships", "talent", "data")


def line(name: str, ratio: float, ok: bool, detail: str) -> bool:
    print(f"{name:8} ratio {ratio:6.3f}  {'ok ' if ok else 'MISS'}  {detail}", flush=True)
    return ok


async def bench_fanout(tmp: Path, chats: int = 1000) -> bool:
    store = make_store(tmp / "fanout.db")
    targets = [add_target(store, "telegram", str(10_000 + i)) for i in range(chats)]
    queue_alerts(store, add_story(store, 1), targets)
    async with FakeTelegram() as tg:
        sender = await open_telegram_sender(tg.token, base_url=tg.base_url)
        try:
            await DeliveryWorker(store, {"telegram": sender}).drain_once(max_wait=600)
        finally:
            await sender.close()
        ok_times = [r.t for r in tg.requests("sendMessage") if r.status == 200]
        delivered = sum(1 for i in range(chats) if tg.sent_messages(10_000 + i))
        rejected = tg.rejected
    store.close()
    rate = (len(ok_times) - 1) / (ok_times[-1] - ok_times[0])
    ratio = rate / 30
    return line(
        "fanout",
        ratio,
        ratio >= 0.95 and rejected == 0 and delivered == chats,
        f"{rate:.2f} msg/s over {len(ok_times)} chats, 429s {rejected}, delivered {delivered}",
    )


async def bench_group(tmp: Path, full: bool, alerts: int = 60) -> bool:
    scale = 1.0 if full else 0.1
    limits = Limits(global_window=1.0 * scale, chat_window=1.0 * scale, group_window=60.0 * scale)
    store = make_store(tmp / "group.db")
    chat = -1_001_000
    tid = add_target(store, "telegram", str(chat), chat_type="supergroup")
    for n in range(alerts):
        queue_alerts(store, add_story(store, n), [tid])
    policy = PlatformPolicy(TELEGRAM_LIMITS.scaled(scale))
    async with FakeTelegram(limits=limits) as tg:
        tg.set_chat(chat, "supergroup")
        sender = await open_telegram_sender(tg.token, base_url=tg.base_url)
        started = time.monotonic()
        try:
            worker = DeliveryWorker(store, {"telegram": sender}, policies={"telegram": policy})
            await worker.drain_once(max_wait=600)
        finally:
            await sender.close()
        elapsed = (time.monotonic() - started) / scale
        most = tg.max_in_window(chat, 60.0 * scale)
        sent, rejected = len(tg.sent_messages(chat)), tg.rejected
    store.close()
    ratio = most / 20
    clock = "real time" if full else "clock x10 (fake and limiter scaled alike; --full: real)"
    return line(
        "group",
        ratio,
        0.9 <= ratio <= 1.0 and sent == alerts and rejected == 0,
        f"most in any 60 s: {most}; {sent} alerts in {elapsed:.0f} s (as real time), "
        f"429s {rejected}; {clock}",
    )


async def bench_private(tmp: Path, alerts: int = 10) -> bool:
    store = make_store(tmp / "private.db")
    chat = 4242
    tid = add_target(store, "telegram", str(chat))
    for n in range(alerts):
        queue_alerts(store, add_story(store, n), [tid])
    async with FakeTelegram() as tg:
        sender = await open_telegram_sender(tg.token, base_url=tg.base_url)
        try:
            await DeliveryWorker(store, {"telegram": sender}).drain_once(max_wait=120)
        finally:
            await sender.close()
        most = tg.max_in_window(chat, 1.0)
        sent, rejected = len(tg.sent_messages(chat)), tg.rejected
    store.close()
    ratio = most / 1
    return line(
        "private",
        ratio,
        ratio <= 1.0 and sent == alerts and rejected == 0,
        f"most in any 1 s: {most}; {sent} sent, 429s {rejected}",
    )


async def bench_discord(tmp: Path, channels: int = 40, per_channel: int = 3) -> bool:
    store = make_store(tmp / "discord.db")
    guild = 90_000
    ids = [guild + 1 + i for i in range(channels)]
    targets = [add_target(store, "discord", str(c)) for c in ids]
    for n in range(per_channel):
        queue_alerts(store, add_story(store, n), targets)
    saved = discord.http.Route.BASE
    async with FakeDiscord() as dc:
        dc.add_guild(guild, channels=ids)
        sender = await open_discord_sender(dc.token, api_base_url=dc.rest_base)
        try:
            await DeliveryWorker(store, {"discord": sender}).drain_once(max_wait=120)
        finally:
            await sender.close()
            discord.http.Route.BASE = saved
        posts = dc.matching(r"^/channels/\d+/messages$", "POST")
        times = sorted(r.t for r in posts)
        per_429 = Counter(r.path for r in posts if r.status == 429)
        sent = sum(len(dc.messages[c]) for c in ids)
    store.close()
    rate = (len(times) - 1) / (times[-1] - times[0])
    ratio = rate / min(50, channels * 1)
    worst = max(per_429.values(), default=0)
    return line(
        "discord",
        ratio,
        ratio >= 0.85 and worst <= 1 and sent == channels * per_channel,
        f"{rate:.1f} req/s for {len(times)} requests, most 429s in one channel {worst}, "
        f"sent {sent}",
    )


def bench_match(subs: int = 100_000, stories: int = 50) -> bool:
    rng = random.Random(7)
    active: list[tuple[int, Subscription]] = []
    for i in range(subs):
        roll = rng.random()
        countries: tuple[str, ...] = ()
        topics: tuple[str, ...] = ()
        keywords: tuple[str, ...] = ()
        if roll < 0.88:
            countries = tuple(rng.sample(COUNTRIES, rng.randint(1, 3)))
        if roll >= 0.98 or rng.random() < 0.3:
            topics = tuple(rng.sample(TOPICS, rng.randint(1, 2)))
        if rng.random() < 0.1:
            keywords = (rng.choice(["HyperCLOVA", "Exaone", "sovereign cloud", "GPU", "Mistral"]),)
        spec = SubscriptionSpec(countries=countries, topics=topics, keywords=keywords)
        active.append((i, Subscription(id=i, target=Target("telegram", str(i)), spec=spec)))
    match = make_matcher(lambda: active, version=lambda: 1)
    now = datetime.now(UTC)

    def story(n: int) -> tuple[StoryCandidate, NewArticle]:
        countries = tuple(rng.sample(COUNTRIES, rng.randint(1, 2)))
        topics = tuple(rng.sample(TOPICS, 2))
        cand = StoryCandidate(
            f"s{n}",
            f"Story {n}",
            "https://x",
            countries,
            topics,
            (),
            "",
            True,
            now,
            now,
            now,
            1,
            ("X",),
        )
        art = NewArticle(
            f"a{n}",
            "https://x",
            None,
            None,
            "X",
            "feed",
            f"Naver HyperCLOVA GPU cluster {n}",
            "The government backs sovereign cloud and GPU clusters.",
            now,
            now,
            "en",
            True,
            1.0,
            countries,
            topics,
            (),
            f"s{n}",
            "",
        )
        return cand, art

    first = time.perf_counter()
    c0, a0 = story(0)
    match(c0, a0, True)  # builds the index once; reused while subscriptions are unchanged
    build = time.perf_counter() - first
    timings: list[float] = []
    matched: list[int] = []
    for n in range(1, stories + 1):
        cand, art = story(n)
        t = time.perf_counter()
        matched.append(len(match(cand, art, True)))
        timings.append(time.perf_counter() - t)
    p50, worst = statistics.median(timings) * 1000, max(timings) * 1000
    ratio = p50 / 50
    return line(
        "match",
        ratio,
        p50 <= 50,
        f"median {p50:.1f} ms (worst {worst:.1f} ms) per story over {subs:,} subscriptions, "
        f"outbox rows included (mean {statistics.mean(matched):.0f} matched, most "
        f"{max(matched)}); index built once in {build * 1000:.0f} ms",
    )


FRESH_ITEMS = [
    (
        "South Korea selects five teams to build sovereign foundation models",
        "The science ministry will give the consortia GPUs and data to train Korean models.",
    ),
    (
        "France commits 500 million euros to a national AI compute cluster",
        "The French government will fund a supercomputer for training sovereign models.",
    ),
    (
        "Japan funds a national project to train Japanese large language models",
        "Tokyo's ministry of economy backs domestic model builders with compute grants.",
    ),
    (
        "India picks Sarvam AI to build the country's sovereign language model",
        "The IndiaAI Mission gives the startup subsidised GPUs to train an Indian model.",
    ),
    (
        "The EU AI Act's obligations for general-purpose AI models take effect",
        "Providers of large models in the European Union must now meet transparency duties.",
    ),
    (
        "Saudi Arabia launches a national Arabic language model",
        "The kingdom's AI company released the model as part of its national AI strategy.",
    ),
    (
        "Singapore funds a sovereign model for Southeast Asian languages",
        "The national research programme will extend its regional language model.",
    ),
    (
        "The UAE opens a national AI campus with gigawatts of data centre capacity",
        "Abu Dhabi's sovereign compute site will host models trained for the Emirates.",
    ),
]


async def bench_fresh(tmp: Path, chats: int = 60, poll: float = 2.0) -> bool:
    settings = Settings(  # type: ignore[call-arg]
        SW_DB_PATH=tmp / "fresh.db", SW_POLL_SECONDS=poll, SW_LOAD_STARTER=False
    )
    app = build_app(settings, load_starter=False)
    for i in range(chats):
        app.store.subscriptions.add(Target("telegram", str(20_000 + i)), SubscriptionSpec())
    rng = random.Random(11)
    published: dict[str, float] = {}
    async with FakeTelegram() as tg, FeedServer() as feeds:
        feeds.set_feed("/fresh.xml", make_rss("Wire", []))
        app.store.sources.ensure(feeds.url("/fresh.xml"), kind="feed")
        sender = await open_telegram_sender(tg.token, base_url=tg.base_url)
        worker = app.delivery_worker({"telegram": sender}, WorkerConfig(poll_seconds=poll))
        stop = asyncio.Event()
        async with FeedFetcher(FetchLimits(allow_private=True)) as fetcher:
            poller = app.poller(fetcher)
            tasks = [
                asyncio.create_task(poller.run_forever(stop, tick=0.05)),
                asyncio.create_task(worker.run_forever(stop)),
            ]
            try:
                await asyncio.sleep(poll + 0.5)  # the empty feed is known; the loops are warm
                items: list[tuple[str, str, str]] = []
                for n, (title, summary) in enumerate(FRESH_ITEMS):
                    await asyncio.sleep(rng.uniform(poll + 1.0, poll + 4.0))
                    items.append((title, f"https://wire.example/fresh/{n}", summary))
                    feeds.set_feed("/fresh.xml", make_rss("Wire", items))
                    published[title] = time.monotonic()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    got = sum(len(tg.sent_messages(20_000 + i)) for i in range(chats))
                    if got >= chats * len(FRESH_ITEMS):
                        break
                    await asyncio.sleep(0.1)
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                await sender.close()
        last: dict[str, float] = {}
        for i in range(chats):
            for message in tg.sent_messages(20_000 + i):
                for title in published:
                    if title in message["plain_text"]:
                        last[title] = max(last.get(title, 0.0), float(message["t"]))
        rejected = tg.rejected
    app.close()
    lags = sorted(last[t] - published[t] for t in published if t in last)
    missing = len(published) - len(lags)
    p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))] if lags else float("inf")
    budget = poll + chats / 30
    ratio = p95 / budget
    return line(
        "fresh",
        ratio,
        ratio <= 1.1 and missing == 0 and rejected == 0,
        f"p95 {p95:.2f} s (median {statistics.median(lags) if lags else 0:.2f} s) from "
        f"publication to last of {chats} deliveries, {len(lags)} items; budget {poll:g} s poll "
        f"+ {chats}/30 s = {budget:.1f} s (poller tick 0.05 s); items never delivered {missing}, "
        f"429s {rejected}",
    )


async def main(full: bool, only: list[str]) -> int:
    results: list[bool] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = {
            "match": lambda: asyncio.to_thread(bench_match),
            "fanout": lambda: bench_fanout(tmp),
            "group": lambda: bench_group(tmp, full),
            "private": lambda: bench_private(tmp),
            "discord": lambda: bench_discord(tmp),
            "fresh": lambda: bench_fresh(tmp),
        }
        for name, run in runs.items():
            if not only or name in only:
                results.append(await run())
    return 0 if all(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the group benchmark in real time")
    parser.add_argument(
        "--only", nargs="*", default=[], help="match fanout group private discord fresh"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.full, args.only)))
