"""Score the offline classifier directly against the labelled dev set and the real-world feeds.

Run: `python -m tests.eval.score_classify` (or the file itself). Skips with exit 0 when the
shared data directory is absent, so it is safe anywhere.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core.classify import Classifier

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ARTICLES = SHARED / "eval" / "articles.jsonl"
REAL_FEEDS = SHARED / "realworld" / "real-feeds-200"
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else 0.0

    def add_sets(self, gold: Iterable[str], pred: Iterable[str]) -> None:
        g, p = set(gold), set(pred)
        self.tp += len(g & p)
        self.fp += len(p - g)
        self.fn += len(g - p)


@dataclass
class ArticleScore:
    relevance: Counts = field(default_factory=Counts)
    countries: Counts = field(default_factory=Counts)
    topics: Counts = field(default_factory=Counts)
    errors: list[str] = field(default_factory=list)


def load_articles(path: Path = ARTICLES) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def score_articles(classifier: Classifier, rows: list[dict[str, object]]) -> ArticleScore:
    """Relevance F1/specificity; country and topic micro-F1 over the items labelled relevant.

    An item predicted not relevant contributes no countries or topics (it would not be exported).
    """
    out = ArticleScore()
    for row in rows:
        result = classifier.classify(str(row["title"]), str(row["summary"]), str(row["lang"]))
        gold = bool(row["relevant"])
        rel = out.relevance
        if gold and result.relevant:
            rel.tp += 1
        elif gold:
            rel.fn += 1
        elif result.relevant:
            rel.fp += 1
        else:
            rel.tn += 1
        if gold != result.relevant:
            out.errors.append(f"relevance {row['id']}: gold={gold} score={result.score}")
        if not gold:
            continue
        pred_c = result.countries if result.relevant else ()
        pred_t = result.topics if result.relevant else ()
        gold_c = [str(c) for c in row["countries"]]  # type: ignore[attr-defined]
        gold_t = [str(t) for t in row["topics"]]  # type: ignore[attr-defined]
        out.countries.add_sets(gold_c, pred_c)
        out.topics.add_sets(gold_t, pred_t)
        if set(gold_c) != set(pred_c):
            out.errors.append(f"countries {row['id']}: gold={sorted(gold_c)} got={list(pred_c)}")
    return out


def feed_items(root: Path = REAL_FEEDS) -> list[tuple[str, str, str | None]]:
    """(title, plain-text summary, language) of every entry in the captured real-world feeds."""
    import feedparser

    items: list[tuple[str, str, str | None]] = []
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name.upper().startswith(("LICENSE", "README")):
            continue
        parsed = feedparser.parse(path.read_bytes())
        lang = parsed.feed.get("language") if parsed.get("feed") else None
        for entry in parsed.entries:
            title = _plain(entry.get("title") or "")
            summary = _plain(entry.get("summary") or "")
            items.append((title, summary, lang))
    return items


def _plain(markup: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", markup))).strip()


def score_realworld(
    classifier: Classifier, items: list[tuple[str, str, str | None]]
) -> tuple[float, list[str]]:
    flagged = [t for t, s, lang in items if classifier.classify(t, s, lang).relevant]
    share = len(flagged) / len(items) if items else 0.0
    return share, flagged


def measure_speed(
    classifier: Classifier, items: list[tuple[str, str, str | None]], rounds: int = 1
) -> float:
    """Items per second on this core for typical title+summary input."""
    started = time.perf_counter()
    count = 0
    for _ in range(rounds):
        for title, summary, lang in items:
            classifier.classify(title, summary, lang)
            count += 1
    elapsed = time.perf_counter() - started
    return count / elapsed if elapsed else float("inf")


def _fmt(c: Counts) -> str:
    return f"P={c.precision:.3f} R={c.recall:.3f} F1={c.f1:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    verbose = "-v" in args
    if not ARTICLES.exists():
        print(f"skip: {ARTICLES} not found (shared data absent)")
        return 0
    classifier = Classifier()
    rows = load_articles()
    result = score_articles(classifier, rows)
    rel = result.relevance
    print(f"dev articles: {len(rows)}")
    print(
        f"relevance   {_fmt(rel)} specificity={rel.specificity:.3f}"
        f" (tp={rel.tp} fp={rel.fp} fn={rel.fn} tn={rel.tn})"
    )
    print(f"countries   {_fmt(result.countries)}")
    print(f"topics      {_fmt(result.topics)}")
    if verbose:
        for line in result.errors:
            print("  ", line)
    dev_items = [(str(r["title"]), str(r["summary"]), str(r["lang"])) for r in rows]
    if REAL_FEEDS.is_dir():
        items = feed_items()
        share, flagged = score_realworld(classifier, items)
        print(f"real-world feeds: {len(items)} items, {len(flagged)} relevant = {share:.2%}")
        if verbose:
            for title in flagged:
                print("   +", title[:110])
        speed_items = [it for it in items if it[0]][:3000] + dev_items
    else:
        print("real-world feeds: absent, skipped")
        speed_items = dev_items
    typical = [(t, s[:600], lang) for t, s, lang in speed_items]
    print(f"speed: {measure_speed(classifier, typical, rounds=2):,.0f} items/s (one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
