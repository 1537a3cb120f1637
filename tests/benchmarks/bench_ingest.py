"""Ingest benchmark: 20,000 generated items in ~100 feeds (a fifth Korean) into a fresh store.

Prints entries/s end to end (parse, filter, tag, group, dedupe, SQLite + FTS commit) and its
ratio to raw fastfeedparser parsing of the same files; then the same feeds again ("seen items")
as a ratio of raw parse speed with our parser; and peak RSS.

Run: python tests/benchmarks/bench_ingest.py [--items 20000]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fastfeedparser

from bot.core.classify import Classifier
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Batch, Ingestor
from bot.core.parse import parse_feed
from storage.db import open_database
from storage.repositories import Store

EN_SUBJECTS = [
    "France's Mistral AI",
    "The UK government",
    "India's IndiaAI Mission",
    "Japan's METI",
    "The European Commission",
    "Abu Dhabi's G42",
    "Saudi Arabia's HUMAIN",
    "Singapore's IMDA",
    "A local bakery",
    "The city council",
    "A football club",
    "Apple",
    "A startup in Berlin",
]
EN_ACTIONS = [
    "announces a {n} billion euro plan for sovereign AI compute",
    "opens a national supercomputer with {n},000 GPUs",
    "releases an open-weight foundation model with {n}B parameters",
    "publishes its national AI strategy and a {n} million fund",
    "wins the regional cup after {n} matches",
    "launches a new phone with a {n} MP camera",
    "reports quarterly revenue up {n} percent",
]
KO_SUBJECTS = [
    "과학기술정보통신부",
    "네이버클라우드",
    "LG AI연구원",
    "업스테이지",
    "SK텔레콤",
    "서울시",
    "한 프로야구 구단",
    "동네 카페",
]
KO_ACTIONS = [
    "독자 AI 파운데이션 모델 {n}차 평가 결과를 발표했다",
    "국가 AI 컴퓨팅센터에 GPU {n}천 장을 도입한다",
    "인공지능 기본법 시행령 {n}개 조항을 공개했다",
    "시즌 {n}번째 승리를 거뒀다",
    "신메뉴 {n}종을 출시했다",
]


def make_feeds(folder: Path, items: int, feeds: int = 100, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    per_feed = items // feeds
    paths = []
    base = 1_760_000_000
    for f in range(feeds):
        korean = f % 5 == 0
        out = [
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>',
            f"<title>Outlet {f}</title><link>https://outlet{f}.example/</link>",
        ]
        for i in range(per_feed):
            n = rng.randint(2, 99)
            if korean:
                title = f"{rng.choice(KO_SUBJECTS)}, {rng.choice(KO_ACTIONS).format(n=n)}"
                summary = f"{title}. 관계자는 이번 발표가 {n}개 기관과 협력한 결과라고 밝혔다."
            else:
                title = f"{rng.choice(EN_SUBJECTS)} {rng.choice(EN_ACTIONS).format(n=n)}"
                summary = (
                    f"<p>{escape(title)}.</p><p>Officials said {n} partners were involved.</p>"
                )
            when = format_datetime(datetime.fromtimestamp(base + f * 1000 + i * 37, UTC))
            out.append(
                f"<item><title>{escape(title)}</title>"
                f"<link>https://outlet{f}.example/news/{i}?utm_source=rss</link>"
                f"<guid>outlet{f}-{i}</guid><pubDate>{when}</pubDate>"
                f"<description><![CDATA[{summary}]]></description></item>"
            )
        out.append("</channel></rss>")
        path = folder / f"feed{f:03d}.xml"
        path.write_text("\n".join(out), encoding="utf-8")
        paths.append(path)
    return paths


def raw_fast(paths: list[Path]) -> tuple[int, float]:
    t = time.perf_counter()
    n = 0
    for p in paths:
        n += len(fastfeedparser.parse(p.read_bytes()).entries)
    return n, time.perf_counter() - t


def raw_ours(paths: list[Path]) -> tuple[int, float]:
    t = time.perf_counter()
    n = 0
    for p in paths:
        n += len(parse_feed(p.read_bytes(), feed_url=p.as_uri()).entries)
    return n, time.perf_counter() - t


def ingest_all(ingestor: Ingestor, store: Store, paths: list[Path]) -> tuple[int, float]:
    """As `sovereign-watch ingest` and a poll round do: parse every feed, store them together."""
    t = time.perf_counter()
    batches = []
    for p in paths:
        parsed = parse_feed(p.read_bytes(), feed_url=p.as_uri())
        batches.append(Batch(parsed.entries, store.sources.ensure(p.as_uri(), kind="file")))
    n = sum(c.fetched for c in ingestor.ingest_many(batches))
    return n, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_feeds(folder, args.items)
        raw_ours(paths[:5])  # warm up: lazily loaded models (language id) are not parse cost
        n_fast, t_fast = raw_fast(paths)
        n_ours, t_ours = raw_ours(paths)
        gazetteer = Gazetteer.load()
        runs = []
        for run in range(3):  # the median of three fresh stores: one run on 2 cores is noisy
            store = Store(open_database(folder / f"bench{run}.db"))
            ingestor = Ingestor(store, Classifier(gazetteer))
            runs.append(ingest_all(ingestor, store, paths))
        n_new, t_new = sorted(runs, key=lambda r: r[1])[1]
        stored = store.articles.count()
        n_seen, t_seen = ingest_all(ingestor, store, paths)
        assert store.articles.count() == stored, "seen items were stored again"
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        fast_rate, ours_rate = n_fast / t_fast, n_ours / t_ours
        new_rate, seen_rate = n_new / t_new, n_seen / t_seen
        print(f"items={n_new} feeds={len(paths)} stored={stored} (new items: median of 3 runs)")
        print(f"raw fastfeedparser: {fast_rate:,.0f} entries/s; raw parse_feed: {ours_rate:,.0f}/s")
        print(
            f"new items: {new_rate:,.0f} entries/s (target >= 2,000) "
            f"ratio_to_fastfeedparser={new_rate / fast_rate:.3f}"
        )
        print(
            f"seen items: {seen_rate:,.0f} entries/s "
            f"ratio_to_parse_feed={seen_rate / ours_rate:.2f} (target >= 0.5)"
        )
        print(f"peak_rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()
