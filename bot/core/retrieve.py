"""Question -> ranked articles, one per story, from the store's FTS5 index.

BM25 over an OR of the question's search forms (Korean stems, gazetteer names and lexicon
translations included) finds a pool; each pooled article is then checked group by group
(`bot.core.question`): how much of the question it covers, weighted by rarity in the pool, and
which constraints (named actors, years, rounds, figures) it lacks. The pool's other articles of
the same story travel with each hit, so an answer can quote the outlet that holds the detail.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.features import Analyzer, TextFeatures
from bot.core.gazetteer import Gazetteer
from bot.core.lexicon import Lexicon
from bot.core.models import Article
from bot.core.ports import ArticleRepo
from bot.core.question import (
    QueryGroup,
    Question,
    QuestionParser,
    wants_recent,
)
from bot.core.textindex import fts_or_query

__all__ = ["Hit", "QueryGroup", "Question", "Retriever", "group_credit", "wants_recent"]

# Retrieval looks at this much recent history first; older items are searched only when the
# window finds too little. Keeps p95 flat as the store grows.
RECENT_WINDOW = timedelta(days=400)
WINDOW_FROM_ROWS = 200_000
WINDOW_REFRESH_S = 300.0
MAX_SEARCH_TERMS = 28
TERMS_PER_GROUP = 6
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    coverage: float
    matched: frozenset[int]
    anchor_coverage: float = 1.0
    missing: tuple[int, ...] = ()  # anchored groups the article lacks
    credits: tuple[float, ...] = ()  # per group, 0..1
    siblings: tuple[Article, ...] = ()  # other pooled articles of the same story
    when: datetime | None = None  # the story's newest known date among the pool


def group_credit(group: QueryGroup, feats: TextFeatures) -> float:
    """1 when any key of the group is in the text; partial for most of a long Korean word."""
    if group.keys & feats.keys:
        return 1.0
    if group.aliases and any(a in feats.flat for a in group.aliases):
        return 1.0
    if len(group.grams) >= 2:
        share = sum(1 for g in group.grams if g in feats.grams) / len(group.grams)
        if share >= 0.6:
            return 0.8 * share
    return 0.0


class Retriever:
    """Search and re-rank over one store; keeps the features of articles it has read."""

    def __init__(
        self, articles: ArticleRepo, gazetteer: Gazetteer, lexicon: Lexicon | None = None
    ) -> None:
        self.articles = articles
        self.gazetteer = gazetteer
        self.analyzer = Analyzer(gazetteer, lexicon)
        self.parser = QuestionParser(self.analyzer)
        self._feats: dict[str, TextFeatures] = {}
        self._sentences: dict[str, list[tuple[int, str, TextFeatures]]] = {}
        self._window: tuple[float, int] | None = None

    def parse(self, question: str) -> Question:
        return self.parser.parse(question)

    def query_groups(self, question: str) -> list[QueryGroup]:
        return self.parse(question).groups

    def features(self, article: Article) -> TextFeatures:
        """Features of a stored article (title and summary), cached: articles do not change."""
        feats = self._feats.get(article.id)
        if feats is None:
            if len(self._feats) >= _CACHE_SIZE:
                self._feats.clear()
            feats = self.analyzer.features(
                f"{article.title}\n{article.summary}",
                entities=article.entities,
                countries=article.countries,
                light=True,
            )
            self._feats[article.id] = feats
        return feats

    def forget(self) -> None:
        """Drop cached article features (a benchmark measures the uncached path with this)."""
        self._feats.clear()
        self._sentences.clear()

    def sentences(self, article: Article) -> list[tuple[int, str, TextFeatures]]:
        """The title (position -1) and each sentence of an article with its features, cached."""
        cached = self._sentences.get(article.id)
        if cached is None:
            if len(self._sentences) >= _CACHE_SIZE:
                self._sentences.clear()
            parts = [(-1, article.title), *enumerate(split_sentences(article.summary))]
            cached = [(pos, text, self.analyzer.features(text)) for pos, text in parts]
            self._sentences[article.id] = cached
        return cached

    def search(
        self,
        question: str,
        *,
        limit: int = 6,
        pool: int = 40,
        groups: list[QueryGroup] | None = None,
        parsed: Question | None = None,
    ) -> list[Hit]:
        """Ranked hits, one per story; the groups get their weights set."""
        if parsed is None:
            parsed = self.parse(question)
        if groups is None:
            groups = parsed.groups
        if not groups:
            return []
        raw = self._pool(groups, pool, limit)
        if not raw:
            return []
        articles = [h.article for h in raw]
        feats = [self.features(a) for a in articles]
        credits = [[group_credit(g, f) for g in groups] for f in feats]
        _lend_story_names(groups, articles, credits)
        for i, group in enumerate(groups):
            df = sum(1 for row in credits if row[i] > 0)
            rarity = math.log(1 + len(raw) / (1 + df)) + 0.3
            group.weight = group.prior * rarity
        best_bm25 = max(h.score for h in raw) or 1.0
        dated = _story_dates(articles)
        anchors = [i for i, g in enumerate(groups) if g.anchor]
        hits: list[Hit] = []
        for h, row in zip(raw, credits, strict=True):
            art = h.article
            coverage = _coverage(groups, row, art.lang)
            missing = tuple(i for i in anchors if row[i] < 0.5)
            anchor_cov = (
                sum(groups[i].weight * row[i] for i in anchors)
                / sum(groups[i].weight for i in anchors)
                if anchors
                else 1.0
            )
            score = coverage + 0.3 * anchor_cov + 0.2 * (h.score / best_bm25)
            if art.kind == "starter":
                score -= 0.1  # news beats the background file when both answer
            if art.lang == parsed.lang:
                score += 0.05  # between equals, a source the asker can read
            if not art.relevant:
                score -= 0.1
            matched = frozenset(i for i, c in enumerate(row) if c > 0)
            hits.append(
                Hit(
                    art,
                    score,
                    coverage,
                    matched,
                    anchor_cov,
                    missing,
                    tuple(row),
                    when=dated.get(art.story_id),
                )
            )
        hits.sort(key=lambda x: x.score, reverse=True)
        return _one_per_story(hits, limit)

    def _window_start(self) -> int:
        """The first row of the recency window (0: search everything). The boundary moves
        slowly and finding it scans the table, so it is looked up once every few minutes."""
        top = self.articles.max_seq()
        if top <= WINDOW_FROM_ROWS:
            return 0
        now = time.monotonic()
        if self._window is None or now - self._window[0] > WINDOW_REFRESH_S:
            start = self.articles.seq_since(datetime.now(UTC) - RECENT_WINDOW)
            self._window = (now, start)
        return self._window[1]

    def _pool(self, groups: list[QueryGroup], pool: int, limit: int) -> list[_Raw]:
        terms = _search_terms(groups)
        match = fts_or_query(terms)
        if not match:
            return []
        min_seq = self._window_start()
        raw = self.articles.search(match, limit=pool, min_seq=min_seq)
        if min_seq and len(raw) < limit:
            raw = self.articles.search(match, limit=pool)
        return [_Raw(h.article, h.score) for h in raw]


@dataclass(frozen=True)
class _Raw:
    article: Article
    score: float


def _lend_story_names(
    groups: list[QueryGroup], articles: list[Article], credits: list[list[float]]
) -> None:
    """A follow-up report often drops the program's full name that its story's other reports
    give; named actors and countries are shared within a story (figures and dates are not)."""
    named = [i for i, g in enumerate(groups) if g.kind in ("entity", "country")]
    if not named:
        return
    best: dict[tuple[str, int], float] = {}
    for art, row in zip(articles, credits, strict=True):
        for i in named:
            key = (art.story_id, i)
            best[key] = max(best.get(key, 0.0), row[i])
    for art, row in zip(articles, credits, strict=True):
        for i in named:
            row[i] = max(row[i], 0.8 * best[(art.story_id, i)])


_SENTENCE_RE = re.compile(r"(?<=[.!?。])\s+(?=[\"'“‘(\[A-Z0-9\uAC00-\uD7A3])|(?<=다\.)\s*|\n+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a summary (English or Korean); fragments of three characters or fewer go."""
    parts = [p.strip() for p in _SENTENCE_RE.split(text) if p and p.strip()]
    return [p for p in parts if len(p) > 3]


def _search_terms(groups: list[QueryGroup]) -> list[str]:
    """Forms to OR together: specific groups first; generic words only when little else.

    Every term costs the index a scan of its rows and bm25 a look at each one, so each group
    brings at most a few forms (its own words first, then translations), in Latin or Hangul.
    """
    specific = [g for g in groups if g.prior >= 0.5]
    chosen = specific if len(specific) >= 2 else groups
    lists = [
        [t for t in dict.fromkeys(g.terms) if _searchable(t)][:TERMS_PER_GROUP]
        for g in sorted(chosen, key=lambda g: -g.prior)
    ]
    out: list[str] = []
    depth = 0
    # Round-robin so one group's many aliases cannot crowd out the others.
    while len(out) < MAX_SEARCH_TERMS and any(depth < len(t) for t in lists):
        for terms in lists:
            if depth < len(terms) and terms[depth] not in out:
                out.append(terms[depth])
        depth += 1
    return out[:MAX_SEARCH_TERMS]


_SCRIPTS = re.compile(r"^[\s\x21-\x7e\u00c0-\u024f\uac00-\ud7a3]+$")


def _searchable(term: str) -> bool:
    """Latin or Hangul (the store's languages), and not a lone syllable that matches anything."""
    core = term.rstrip("*")
    if not core or not _SCRIPTS.match(core):
        return False
    if len(core) < 2:
        return False
    return not (len(core) == 2 and core.endswith("*"))


def _coverage(groups: list[QueryGroup], row: list[float], lang: str) -> float:
    """Weighted share of the question present; words with no form in the article's language
    count half, so a cross-language answer is possible but not favoured."""
    total = got = 0.0
    for group, credit in zip(groups, row, strict=True):
        weight = group.weight
        if group.lang and group.lang != lang and credit == 0:
            weight *= 0.5
        total += weight
        got += group.weight * credit
    return min(got / total, 1.0) if total else 0.0


def _story_dates(articles: list[Article]) -> dict[str, datetime]:
    """Newest known publication date per story; undated news takes its story's date."""
    out: dict[str, datetime] = {}
    for art in articles:
        if art.published is None or art.kind == "starter":
            continue
        when = art.published if art.published.tzinfo else art.published.replace(tzinfo=UTC)
        if art.story_id not in out or when > out[art.story_id]:
            out[art.story_id] = when
    return out


def _one_per_story(hits: list[Hit], limit: int) -> list[Hit]:
    by_story: dict[str, list[Hit]] = {}
    order: list[str] = []
    for hit in hits:
        sid = hit.article.story_id
        if sid not in by_story:
            by_story[sid] = []
            order.append(sid)
        by_story[sid].append(hit)
    out: list[Hit] = []
    for sid in order[:limit]:
        best, *rest = by_story[sid]
        out.append(
            Hit(
                best.article,
                best.score,
                best.coverage,
                best.matched,
                best.anchor_coverage,
                best.missing,
                best.credits,
                tuple(h.article for h in rest),
                best.when,
            )
        )
    return out
