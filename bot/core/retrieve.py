"""Question -> ranked articles, one per story, from the store's FTS5 index.

BM25 over an OR of the question's content words (Korean stems included), widened through the
gazetteer (한국 ↔ South Korea, 엘지 ↔ LG) and entity tokens, then re-ranked by how many of the
question's words an article covers, so a short article that answers beats a long one that
merely repeats one common word.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.gazetteer import Gazetteer
from bot.core.models import Article
from bot.core.ports import ArticleRepo
from bot.core.textindex import (
    STOPWORDS,
    entity_token,
    fts_or_query,
    hangul_words,
    korean_stems,
    query_groups,
    words,
)

_RECENT_RE = re.compile(
    r"(?i)\b(latest|recent|recently|newest|this week|today|now)\b|최근|최신|요즘|근황"
)
# Retrieval looks at this much recent history first; older items are searched only when the
# window finds too little. Keeps p95 flat as the store grows.
RECENT_WINDOW = timedelta(days=400)


@dataclass
class QueryGroup:
    """One content word of a question with its alternatives (stems, aliases)."""

    terms: list[str]
    anchor: bool = False
    weight: float = 1.0  # rarity among the retrieved pool, set by Retriever.search


_GENERIC = frozenset(
    {"ai", "llm", "gpu", "gpus", "korea", "korean", "south", "national", "model", "project",
     "company", "government", "republic", "compute", "mission", "strategy"}
)


def _is_anchor(word: str, question: str) -> bool:
    """Figures and proper nouns (capitalised mid-sentence, or Latin names in Korean text)."""
    if any(ch.isdigit() for ch in word):
        return True
    if word in _GENERIC or not word.isascii():
        return False
    for m in re.finditer(rf"(?i)(?<![\w]){re.escape(word)}", question):
        original = question[m.start() : m.end()]
        if original[:1].isupper() and m.start() > 0 and question[: m.start()].strip():
            return True
    return False


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    coverage: float
    matched: frozenset[int]
    anchor_coverage: float = 1.0


def _has_hangul(term: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in term)


def _comparable(group: QueryGroup, article_lang: str) -> bool:
    """Can this word show up in an article of that language? (Not 탈락 in English text.)"""
    if group.anchor:
        return True
    if article_lang == "ko":
        return any(_has_hangul(t) or t.isdigit() for t in group.terms)
    return any(not _has_hangul(t) for t in group.terms)


def wants_recent(question: str) -> bool:
    return bool(_RECENT_RE.search(question))


def article_terms(article: Article) -> set[str]:
    text = f"{article.title}\n{article.summary}"
    out = set(words(text)) | {entity_token(e) for e in article.entities}
    for w in hangul_words(text):
        out.add(w)
        out.update(korean_stems(w))
        if len(w) >= 3:
            out.update(w[i : i + 2] for i in range(len(w) - 1))
    return out


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


class Retriever:
    def __init__(self, articles: ArticleRepo, gazetteer: Gazetteer) -> None:
        self.articles = articles
        self.gazetteer = gazetteer

    def query_groups(self, question: str) -> list[QueryGroup]:
        """Content-word groups of the question, widened by gazetteer aliases, anchors marked.

        Anchors are what a supporting article must contain: named entities, figures and
        proper nouns. Without them an answer about something else would look grounded.
        """
        groups = [
            QueryGroup(terms, _is_anchor(terms[0], question)) for terms in query_groups(question)
        ]
        for mention in self.gazetteer.find(question):
            span = question[mention.start : mention.end]
            alias_words: list[str] = [entity_token(mention.key)]
            for alias in self.gazetteer.expand_query(span):
                # Only one-word aliases: the words of "Republic of China" are not Taiwan.
                parts = words(alias)
                if len(parts) == 1 and parts[0] not in STOPWORDS and parts[0] not in _GENERIC:
                    alias_words.append(parts[0])
            span_words = set(words(span))
            for group in groups:
                if any(t in span_words for t in group.terms):
                    group.terms.extend(w for w in alias_words if w not in group.terms)
                    group.anchor = group.anchor or mention.kind != "country"
                    break
            else:
                groups.append(QueryGroup(alias_words, mention.kind != "country"))
        return groups

    def search(
        self,
        question: str,
        *,
        limit: int = 6,
        pool: int = 60,
        groups: list[QueryGroup] | None = None,
    ) -> list[Hit]:
        """Ranked hits, one per story; `groups` (from query_groups) get their weights set."""
        groups = groups if groups is not None else self.query_groups(question)
        if not groups:
            return []
        match = fts_or_query(t for g in groups for t in g.terms)
        recent = wants_recent(question)
        min_seq = 0
        if self.articles.max_seq() > 200_000:
            min_seq = self.articles.seq_since(datetime.now(UTC) - RECENT_WINDOW)
        raw = self.articles.search(match, limit=pool, min_seq=min_seq)
        if min_seq and len(raw) < limit:
            raw = self.articles.search(match, limit=pool)
        if not raw:
            return []
        # Rarer groups weigh more: a group matched by few of the pool is more telling.
        term_sets = [article_terms(h.article) for h in raw]
        stemmed_sets = [{_stem(t) for t in ts} for ts in term_sets]
        weights = []
        for group in groups:
            df = sum(
                1
                for ts, ss in zip(term_sets, stemmed_sets, strict=True)
                if any(t in ts or _stem(t) in ss for t in group.terms)
            )
            weights.append(math.log(1 + len(raw) / (1 + df)) + 0.2)
            group.weight = weights[-1]
        best_bm25 = max(h.score for h in raw) or 1.0
        hits: list[Hit] = []
        for h, ts, ss in zip(raw, term_sets, stemmed_sets, strict=True):
            matched = frozenset(
                i
                for i, g in enumerate(groups)
                if any(t in ts or _stem(t) in ss for t in g.terms)
            )
            # Words that cannot appear in an article's language (탈락 in English text) count
            # half: a cross-language answer is possible, but not favoured over a same-language one.
            denom = sum(
                weights[i] * (1.0 if _comparable(g, h.article.lang) else 0.5)
                for i, g in enumerate(groups)
            )
            coverage = min(sum(weights[i] for i in matched) / (denom or 1.0), 1.0)
            anchors = [i for i, g in enumerate(groups) if g.anchor]
            anchor_cov = (
                sum(weights[i] for i in anchors if i in matched) / sum(weights[i] for i in anchors)
                if anchors
                else 1.0
            )
            score = coverage + 0.3 * anchor_cov + 0.25 * (h.score / best_bm25)
            if h.article.kind == "starter":
                score -= 0.05  # news beats the background file when both answer
            if recent:
                score += 0.3 * _freshness(h.article)
            if not h.article.relevant:
                score -= 0.1
            hits.append(Hit(h.article, score, coverage, matched, anchor_cov))
        hits.sort(key=lambda x: x.score, reverse=True)
        out: list[Hit] = []
        seen: set[str] = set()
        for hit in hits:
            if hit.article.story_id in seen:
                continue
            seen.add(hit.article.story_id)
            out.append(hit)
            if len(out) >= limit:
                break
        return out


def _freshness(article: Article) -> float:
    when = article.published or article.fetched_at
    if when is None:
        return 0.0
    age_days = max((datetime.now(UTC) - when).total_seconds() / 86400, 0.0)
    return 1.0 / (1.0 + age_days / 30.0)
