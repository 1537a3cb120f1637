"""parse_feed over real-world corpora: feedparser's ~2,100 test feeds and 200 captured feeds.

The bar: every file finishes quickly, the only error is NotAFeed, and nothing hostile is left
in stored text. Skips when ../shared/realworld is absent (see its README).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.core.errors import NotAFeed
from bot.core.parse import parse_feed

REALWORLD = Path(__file__).resolve().parents[2].parent / "shared" / "realworld"
PER_FILE_SECONDS = 5.0
SKIP_NAMES = {"LICENSE", "README.md"}

# feedparser's corpus is built to be hostile: no script tag, handler or javascript: may remain.
STRICT = re.compile(r"<\s*script|\bon[a-z]+\s*=|javascript:", re.IGNORECASE)
# Real articles legitimately write about JavaScript ("JavaScript: a guide", `el.onclick = f`)
# in plain text; what must not survive there is markup that would act if rendered as HTML.
MARKUP = re.compile(
    r"<\s*script|<[a-z][^>]*\son[a-z]+\s*=|(?:href|src|action)\s*=\s*[\"']?\s*javascript:",
    re.IGNORECASE,
)
HEADER = re.compile(rb"^Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Tally:
    files: int = 0
    entries: int = 0
    not_a_feed: int = 0
    warnings: int = 0
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")
    problems: list[str] = field(default_factory=list)


def corpus(name: str) -> list[Path]:
    root = REALWORLD / name
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)


def run(
    files: list[Path], text_check: re.Pattern[str], prepare: Callable[[bytes], bytes] | None = None
) -> Tally:
    tally = Tally()
    for path in files:
        body = path.read_bytes()
        if prepare is not None:
            body = prepare(body)
        # feedparser's test files carry the HTTP header they expect in a leading comment.
        header = HEADER.search(body[:2048])
        content_type = header.group(1).decode("ascii", "replace") if header else None
        name = str(path.relative_to(REALWORLD))
        started = time.perf_counter()
        try:
            feed = parse_feed(
                body, feed_url=f"https://realworld.invalid/{name}", content_type=content_type
            )
        except NotAFeed as exc:
            tally.not_a_feed += 1
            if "\n" in exc.reason or not exc.reason.startswith("not a feed: "):
                tally.problems.append(f"{name}: badly formed reason {exc.reason!r}")
            feed = None
        except Exception as exc:  # the point of the test: report, don't stop at the first
            tally.problems.append(f"{name}: {type(exc).__name__}: {exc}")
            feed = None
        elapsed = time.perf_counter() - started
        tally.files += 1
        tally.seconds += elapsed
        tally.slowest = max(tally.slowest, (elapsed, name))
        if elapsed > PER_FILE_SECONDS:
            tally.problems.append(f"{name}: took {elapsed:.1f} s")
        if feed is None:
            continue
        tally.entries += len(feed.entries)
        tally.warnings += feed.warning is not None
        found = text_check.search(feed.title or "")
        if found:
            tally.problems.append(f"{name}: feed title keeps {found.group(0)!r}")
        for entry in feed.entries:
            for label, text in (("title", entry.title), ("summary", entry.summary)):
                found = text_check.search(text)
                if found:
                    tally.problems.append(f"{name}: {label} keeps {found.group(0)!r}")
            if entry.url and not entry.url.startswith(("http://", "https://")):
                tally.problems.append(f"{name}: url {entry.url!r}")
            if "javascript:" in entry.url.lower():
                tally.problems.append(f"{name}: url {entry.url!r}")
    return tally


def with_links(body: bytes) -> bytes:
    """The same feed with a link in every entry, so entries made only of hostile content are
    kept (parse_feed skips entries with neither title nor link) and their text is checked."""
    body = re.sub(
        rb"<entry(\s[^>]*)?>", rb'\g<0><link rel="alternate" href="http://x.invalid/e"/>', body
    )
    return re.sub(rb"<item(\s[^>]*)?>", rb"\g<0><link>http://x.invalid/i</link>", body)


def report(label: str, tally: Tally) -> None:
    print(
        f"\n{label}: {tally.files} files, {tally.entries} entries, "
        f"{tally.not_a_feed} not-a-feed, {tally.warnings} with warnings, "
        f"{tally.seconds:.1f} s total, slowest {tally.slowest[0]:.2f} s ({tally.slowest[1]})"
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_feedparser_corpus_ingests_without_crash_hang_or_hostile_text() -> None:
    tally = run(corpus("feedparser-tests"), STRICT)
    report("feedparser-tests", tally)
    assert tally.files > 2000
    assert not tally.problems, "\n".join(tally.problems[:30])
    # Nearly all of these are feeds; a handful are deliberately empty or undecodable.
    assert tally.not_a_feed < 50


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_captured_real_feeds_ingest_cleanly() -> None:
    tally = run(corpus("real-feeds-200"), MARKUP)
    report("real-feeds-200", tally)
    assert tally.files == 200
    assert not tally.problems, "\n".join(tally.problems[:30])
    assert tally.not_a_feed <= 5
    assert tally.entries > 5000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_hostile_entries_come_out_inert_when_they_are_kept() -> None:
    files = [p for p in corpus("feedparser-tests") if "sanitize" in p.parts]
    tally = run(files, STRICT, prepare=with_links)
    report("feedparser-tests/wellformed/sanitize with links", tally)
    assert len(files) > 700
    assert not tally.problems, "\n".join(tally.problems[:30])
    assert tally.entries > 500  # the rest test feed-level elements only
