"""How much downloading conditional GET saves on a realistic polling pattern.

Run: `python tests/benchmarks/bench_conditional_get.py [--polls 100 --feeds 20 --change 0.1]`.
Two identical local servers publish the same feeds; each poll every feed changes with the
given probability (seeded). A conditional poller (ETag/Last-Modified, like the bot) and an
unconditional one poll them side by side. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core.errors import FeedError
from bot.core.fetch import FeedFetcher, FetchLimits, FetchRequest, FetchResult
from tests.fakes.feed_server import FeedServer, make_rss

RATIO_TARGET = 0.15


def feed_body(feed: int, version: int) -> bytes:
    """A ~10 KB feed whose newest items depend on the version, like a real news feed."""
    items = [
        (
            f"Feed {feed} story {version}-{k}",
            f"http://example.invalid/{feed}/{version}/{k}",
            f"Story {k} of version {version} in feed {feed}. " * 6,
        )
        for k in range(20)
    ]
    return make_rss(f"Benchmark feed {feed}", items)


async def run(polls: int, feeds: int, change: float, seed: int) -> tuple[float, int, int]:
    rng = random.Random(seed)
    versions = [0] * feeds
    limits = FetchLimits(allow_private=True, concurrency=8)
    async with FeedServer() as cond_srv, FeedServer() as plain_srv:
        for i in range(feeds):
            for srv in (cond_srv, plain_srv):
                srv.set_feed(f"/feed{i}.xml", feed_body(i, 0))
        cond_urls = [cond_srv.url(f"/feed{i}.xml") for i in range(feeds)]
        plain_urls = [plain_srv.url(f"/feed{i}.xml") for i in range(feeds)]
        validators: list[tuple[str | None, str | None]] = [(None, None)] * feeds
        cond_bytes = plain_bytes = stale = 0
        after_first_base = 0
        async with FeedFetcher(limits) as cond, FeedFetcher(limits) as plain:
            for poll in range(polls):
                if poll:
                    for i in range(feeds):
                        if rng.random() < change:
                            versions[i] += 1
                            body = feed_body(i, versions[i])
                            cond_srv.set_feed(f"/feed{i}.xml", body)
                            plain_srv.set_feed(f"/feed{i}.xml", body)
                requests: list[FetchRequest] = [
                    (url, etag, lm) for url, (etag, lm) in zip(cond_urls, validators, strict=True)
                ]
                cond_results = await cond.fetch_many(requests)
                plain_results = await plain.fetch_many([(u, None, None) for u in plain_urls])
                for i, (c, p) in enumerate(zip(cond_results, plain_results, strict=True)):
                    if isinstance(c, FeedError) or isinstance(p, FeedError):
                        raise SystemExit(f"poll {poll} feed {i} failed: {c!r} {p!r}")
                    cond_bytes += c.bytes_read
                    plain_bytes += p.bytes_read
                    validators[i] = (c.etag, c.last_modified)
                    stale += _is_stale(c, poll, versions[i], i)
                if poll == 0:
                    after_first_base = cond_srv.unconditional_requests
        ratio = cond_bytes / plain_bytes if plain_bytes else 0.0
        return ratio, cond_srv.unconditional_requests - after_first_base, stale


def _is_stale(result: FetchResult, poll: int, version: int, feed: int) -> int:
    """A 304 is only right when nothing changed; a 200 must carry the current version."""
    if result.not_modified:
        return 0 if poll else 1
    return 0 if result.body == feed_body(feed, version) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=100)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--change", type=float, default=0.10, help="per-feed change rate")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    started = time.monotonic()
    ratio, unconditional, stale = asyncio.run(run(args.polls, args.feeds, args.change, args.seed))
    elapsed = time.monotonic() - started
    print(
        f"conditional_get polls={args.polls} feeds={args.feeds} change={args.change:.2f} "
        f"seed={args.seed} elapsed={elapsed:.1f}s"
    )
    print(
        f"conditional_get bytes_ratio={ratio:.3f} (target <= {RATIO_TARGET}) "
        f"unconditional_after_first={unconditional} (target 0) stale_results={stale} (target 0)"
    )
    ok = ratio <= RATIO_TARGET and unconditional == 0 and stale == 0
    print("conditional_get PASS" if ok else "conditional_get FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
