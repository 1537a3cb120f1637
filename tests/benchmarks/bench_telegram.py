"""Telegram: question round trip and alert fan-out, real python-telegram-bot against the fake.

Run: `python tests/benchmarks/bench_telegram.py [--questions 200] [--articles 10000]
[--chats 1000]`.

1. Round trip: a message update appears on the fake Bot API (long poll woken at once); the
   clock stops when the fake receives the bot's sendMessage for that chat. Extractive answers
   from a real SQLite store holding `--articles` generated items; one question at a time, each
   from its own private chat, started at least 40 ms apart so the 30 msg/s pacing (one send per
   33 ms) is not what is measured. The fake enforces Telegram's flood limits.
2. Fan-out: `--chats` private chats subscribe to KR; one matching story is ingested and the
   delivery worker sends it through TelegramAlertSender. Steady messages/s as a share of the
   30 msg/s Bot API limit, with the 429s the fake gave.
Exits 1 when the round-trip p95 passes 250 ms or fan-out reaches less than 0.9 of the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.adapters.telegram_bot import TelegramBot
from bot.adapters.telegram_sender import open_telegram_sender
from bot.app import App, build_app
from bot.config import Settings
from bot.core.deliver.ratelimit import TELEGRAM_LIMITS, PlatformLimiter
from bot.core.models import FeedEntry, SubscriptionSpec, Target
from tests.fakes.telegram_api import FakeTelegram

ROUND_TRIP_P95_TARGET_MS = 250.0
FANOUT_SHARE_TARGET = 0.9
FIRST_CHAT = 700_000
QUESTIONS = (
    "What is South Korea doing to build sovereign foundation models?",
    "Which countries fund national GPU clusters for AI?",
    "What did France announce about Mistral AI compute?",
    "한국 정부의 독자 AI 파운데이션 모델 사업은?",
    "How is Japan funding its national language models?",
    "What is the UAE doing with Falcon and G42?",
)
PLACES = (
    ("South Korea", "Seoul", "Korean"),
    ("Japan", "Tokyo", "Japanese"),
    ("France", "Paris", "French"),
    ("India", "New Delhi", "Indian"),
    ("the UAE", "Abu Dhabi", "Emirati"),
    ("Germany", "Berlin", "German"),
    ("Saudi Arabia", "Riyadh", "Saudi"),
    ("Singapore", "Singapore", "Singaporean"),
)
ACTS = (
    "funds a national GPU cluster for",
    "selects companies to build",
    "publishes rules for",
    "signs a partnership on",
    "opens public data sets for",
    "trains researchers for",
    "evaluates the safety of",
)
THINGS = ("sovereign foundation models", "national language models", "AI compute", "AI chips")
SYLLABLES = ("ka", "ro", "mi", "tan", "seo", "jun", "bel", "dor", "vik", "lum", "zen", "pra")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def articles(n: int, seed: int = 11) -> list[FeedEntry]:
    """Varied national-AI items; made-up words keep each its own story."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=300)

    def word() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(3))

    out: list[FeedEntry] = []
    for i in range(n):
        country, city, adjective = rng.choice(PLACES)
        act, thing = rng.choice(ACTS), rng.choice(THINGS)
        title = f"{country.capitalize()} {act} {thing}: {word()} {word()} {word()}"
        summary = (
            f"{city}: the {adjective} government {act} {thing}, naming {word()} and {word()} "
            f"as partners in a program worth {rng.randint(1, 900)} million. {word()} {word()}."
        )
        out.append(
            FeedEntry(
                url=f"https://bench.example/{i}",
                title=title,
                summary=summary,
                published=start + timedelta(minutes=40 * i),
                source=f"Bench Wire {i % 17}",
                feed_url="https://bench.example/feed.xml",
            )
        )
    return out


def settings_for(tg: FakeTelegram, db: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        SW_DB_PATH=db,
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_API_BASE_URL=tg.base_url,
        SW_LOAD_STARTER="false",
    )


async def round_trips(tg: FakeTelegram, app: App, n: int) -> list[float]:
    bot = TelegramBot(app, limiter=PlatformLimiter(TELEGRAM_LIMITS), poll_timeout=10.0)
    await bot.start()
    times: list[float] = []
    try:
        for i in range(n):
            chat = FIRST_CHAT + i
            begun = time.monotonic()
            tg.push_update(tg.message_update(chat, QUESTIONS[i % len(QUESTIONS)]))
            await tg.wait_for(lambda c=chat: bool(tg.messages.get(c)), 10)  # type: ignore[misc]
            sent = next(r for r in tg.requests("sendMessage") if r.chat_id == chat)
            times.append((sent.t - begun) * 1000)
            rest = 0.04 - (time.monotonic() - begun)
            if rest > 0:
                await asyncio.sleep(rest)
    finally:
        await bot.stop()
    return times


async def fan_out(tg: FakeTelegram, app: App, chats: int) -> tuple[float, int, int, int]:
    """Messages/s from first to last alert, the busiest second, 429s and chats reached."""
    ids = [FIRST_CHAT + 100_000 + i for i in range(chats)]
    for cid in ids:
        app.store.subscriptions.add(Target("telegram", str(cid)), SubscriptionSpec(("KR",)))
    entry = FeedEntry(
        url="https://bench.example/fanout",
        title="South Korea funds a national GPU centre for sovereign AI models",
        summary="The science ministry will pay for a national GPU centre so that Korean "
        "companies can train sovereign foundation models.",
        published=datetime.now(UTC),
        source="Example Wire",
        feed_url="https://bench.example/feed.xml",
    )
    counts = app.ingestor.ingest([entry], source_id=None)
    assert counts.relevant == 1, counts
    rejected_before = tg.rejected
    sender = await open_telegram_sender(tg.token, base_url=tg.base_url)
    try:
        await app.delivery_worker({"telegram": sender}).drain_once(max_wait=600)
    finally:
        await sender.close()
    wanted = set(ids)
    ok = [r.t for r in tg.requests("sendMessage") if r.status == 200 and r.chat_id in wanted]
    reached = sum(1 for cid in ids if tg.sent_messages(cid))
    rate = (len(ok) - 1) / (ok[-1] - ok[0]) if len(ok) > 1 else 0.0
    return rate, tg.max_in_window(None, 1.0), tg.rejected - rejected_before, reached


async def run(questions: int, n_articles: int, chats: int) -> int:
    async with FakeTelegram() as tg:
        with tempfile.TemporaryDirectory() as tmp:
            app = build_app(settings_for(tg, Path(tmp) / "sw.db"), load_starter=False)
            try:
                started = time.perf_counter()
                stored = app.ingestor.ingest(articles(n_articles), source_id=None)
                took = time.perf_counter() - started
                print(
                    f"store: {app.store.articles.count()} articles "
                    f"({stored.relevant} relevant) generated and ingested in {took:.1f} s"
                )
                times = await round_trips(tg, app, questions)
                rate, busiest, rejected, reached = await fan_out(tg, app, chats)
            finally:
                app.close()
    p50, p95 = pct(times, 0.5), pct(times, 0.95)
    share = rate / 30
    print(f"question round trip over {questions} questions (update on fake -> sendMessage):")
    print(
        f"  p50 {p50:.1f} ms  p95 {p95:.1f} ms  mean {statistics.fmean(times):.1f} ms  "
        f"max {max(times):.1f} ms"
    )
    print(f"alert fan-out to {chats} private chats through the delivery worker:")
    print(
        f"  {rate:.2f} msg/s = {share:.3f} of the 30 msg/s limit; busiest second {busiest}, "
        f"429s {rejected}, chats reached {reached}/{chats}"
    )
    ok = p95 <= ROUND_TRIP_P95_TARGET_MS and share >= FANOUT_SHARE_TARGET and reached == chats
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=1_000)
    args = parser.parse_args()
    return asyncio.run(run(args.questions, args.articles, args.chats))


if __name__ == "__main__":
    sys.exit(main())
