"""Raw parse speed on real captured feeds: fastfeedparser, feedparser and our parse_feed.

Run: `python tests/benchmarks/bench_parse.py [--repeat 3] [--skip-feedparser] [--profile]`.
Reads ../shared/realworld/real-feeds-200 (exits 0 with a note when it is absent). parse_feed
does more than either library (decoding, sanitising every title and summary with nh3,
canonical URLs, language detection, a well-formedness check), so the ratio
parse_feed/fastfeedparser is the price of clean entries over raw parsing.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fastfeedparser
import feedparser

from bot.core.errors import NotAFeed
from bot.core.langdetect import detect_language
from bot.core.parse import parse_feed

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "realworld" / "real-feeds-200"


def load() -> list[tuple[str, bytes]]:
    files = sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "LICENSE")
    return [(p.name, p.read_bytes()) for p in files]


def count_fast(body: bytes) -> int:
    try:
        return len(fastfeedparser.parse(body)["entries"])
    except ValueError:
        return 0


def count_slow(body: bytes) -> int:
    return len(feedparser.parse(body)["entries"])


def count_ours(body: bytes) -> int:
    try:
        return len(parse_feed(body, feed_url="https://bench.invalid/feed").entries)
    except NotAFeed:
        return 0


def measure(
    name: str, count: Callable[[bytes], int], feeds: list[tuple[str, bytes]], repeat: int
) -> tuple[int, float]:
    """Best of `repeat` runs over the whole corpus: (entries, seconds)."""
    best = float("inf")
    entries = 0
    for _ in range(repeat):
        started = time.perf_counter()
        entries = sum(count(body) for _, body in feeds)
        best = min(best, time.perf_counter() - started)
    print(f"{name:<16} {entries:>6} entries  {best:7.3f} s  {entries / best:>9,.0f} entries/s")
    return entries, best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per parser; best is kept")
    parser.add_argument("--skip-feedparser", action="store_true", help="skip the slow baseline")
    parser.add_argument("--profile", action="store_true", help="cProfile one parse_feed pass")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}; nothing to measure")
        return 0
    warnings.simplefilter("ignore")
    feeds = load()
    size = sum(len(body) for _, body in feeds) / 1e6
    print(f"{len(feeds)} feeds, {size:.1f} MB from {CORPUS}")
    detect_language("warm up the language model once, outside the timings")
    fast_n, fast_s = measure("fastfeedparser", count_fast, feeds, args.repeat)
    if not args.skip_feedparser:
        measure("feedparser", count_slow, feeds, 1)
    ours_n, ours_s = measure("parse_feed", count_ours, feeds, args.repeat)
    print(
        f"parse_feed / fastfeedparser: {(ours_n / ours_s) / (fast_n / fast_s):.2f} of the speed"
        f" ({ours_s / fast_s:.1f}x the time)"
    )
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _, body in feeds:
            count_ours(body)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
