"""Answers without a model: pick the stored sentences that answer, cite them, or say so.

The evidence threshold is on weighted coverage: the share of the question's content words
(rarer ones weigh more) that the best-matching article contains. Below it the bot says it does
not know and offers the nearest items instead of guessing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.core.answer_text import question_language, text
from bot.core.models import Answer, Article, Source
from bot.core.retrieve import Hit, QueryGroup, Retriever, _stem, article_terms
from bot.core.textindex import hangul_words, korean_stems, words

MAX_ANSWER_CHARS = 600
_SENTENCE_RE = re.compile(r"(?<=[.!?。])\s+(?=[\"'“‘(\[A-Z0-9\uAC00-\uD7A3])|(?<=다\.)\s*|\n+")


@dataclass(frozen=True)
class _Sentence:
    text: str
    hit_rank: int
    position: int
    score: float


def split_sentences(text_: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_RE.split(text_) if p and p.strip()]
    return [p for p in parts if len(p) > 3]


def _sentence_terms(sentence: str) -> set[str]:
    out = {_stem(w) for w in words(sentence)} | set(words(sentence))
    for w in hangul_words(sentence):
        out.add(w)
        out.update(korean_stems(w))
        if len(w) >= 3:
            out.update(w[i : i + 2] for i in range(len(w) - 1))
    return out


def source_of(article: Article) -> Source:
    published = article.published.date().isoformat() if article.published else None
    return Source(title=article.title, url=article.url, published=published, outlet=article.source)


class ExtractiveAnswerer:
    def __init__(
        self, retriever: Retriever, threshold: float = 0.55, anchored_threshold: float = 0.3
    ) -> None:
        self.retriever = retriever
        self.threshold = threshold
        self.anchored_threshold = anchored_threshold

    def supported(self, hit: Hit) -> bool:
        """Enough evidence: every anchor present and some of the rest, or most of everything."""
        if hit.anchor_coverage >= 0.999 and hit.coverage >= self.anchored_threshold:
            return True
        return hit.anchor_coverage >= 0.999 and hit.coverage >= self.threshold

    def answer(self, question: str) -> Answer:
        lang = question_language(question)
        hits = self.retriever.search(question, limit=6)
        if not hits or not self.supported(hits[0]):
            related = tuple(source_of(h.article) for h in hits[:3] if h.coverage > 0.2)
            reply = text("dont_know", lang)
            return Answer(answer=reply, grounded=False, mode="extractive", related=related)
        groups = self.retriever.query_groups(question)
        return self._compose(groups, hits, lang)

    def _compose(self, groups: list[QueryGroup], hits: list[Hit], lang: str) -> Answer:
        usable = [h for h in hits if h.coverage >= self.anchored_threshold * 0.8][:4]
        weights = _group_weights(groups, usable)
        candidates: list[_Sentence] = []
        for rank, hit in enumerate(usable):
            body = hit.article.summary or hit.article.title
            for pos, sentence in enumerate(split_sentences(body)):
                terms = _sentence_terms(sentence)
                got = sum(
                    w
                    for g, w in zip(groups, weights, strict=True)
                    if any(t in terms or _stem(t) in terms for t in g.terms)
                )
                score = got - 0.15 * rank - 0.02 * pos
                candidates.append(_Sentence(sentence, rank, pos, score))
        candidates.sort(key=lambda s: s.score, reverse=True)
        chosen: list[_Sentence] = []
        budget = MAX_ANSWER_CHARS - 10
        used = 0
        for cand in candidates:
            if cand.score <= 0:
                break
            cost = len(cand.text) + 5
            if used + cost > budget:
                continue
            chosen.append(cand)
            used += cost
            if len(chosen) >= 3:
                break
        if not chosen:
            first = usable[0].article
            chosen = [_Sentence(_clip(first.summary or first.title, budget), 0, 0, 0.0)]
        chosen.sort(key=lambda s: (s.hit_rank, s.position))
        cited: list[int] = []
        parts: list[str] = []
        for sent in chosen:
            if sent.hit_rank not in cited:
                cited.append(sent.hit_rank)
            n = cited.index(sent.hit_rank) + 1
            parts.append(f"{sent.text} [{n}]")
        sources = tuple(source_of(usable[i].article) for i in cited)
        answer = " ".join(parts)
        if len(answer) > MAX_ANSWER_CHARS:
            answer = _clip(answer, MAX_ANSWER_CHARS)
        return Answer(answer=answer, grounded=True, mode="extractive", sources=sources)


def _group_weights(groups: list[QueryGroup], hits: list[Hit]) -> list[float]:
    sets = [article_terms(h.article) for h in hits]
    weights = []
    for g in groups:
        df = sum(1 for s in sets if any(t in s for t in g.terms))
        weights.append(math.log(2 + len(sets) / (1 + df)) * (1.5 if g.anchor else 1.0))
    return weights


def _clip(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
