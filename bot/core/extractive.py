"""Answers without a model: pick the stored sentences that answer, cite them, or say so.

The evidence threshold is on weighted coverage: the share of the question's content words
(rarer ones weigh more) that the best-matching article contains. Below it the bot says it does
not know and offers the nearest items instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.answer_text import question_language, text
from bot.core.models import Answer, Article, Source
from bot.core.retrieve import Hit, QueryGroup, Retriever, _stem
from bot.core.textindex import hangul_words, korean_stems, words

MAX_ANSWER_CHARS = 600
_SENTENCE_RE = re.compile(r"(?<=[.!?。])\s+(?=[\"'“‘(\[A-Z0-9\uAC00-\uD7A3])|(?<=다\.)\s*|\n+")


_NUMBER_Q = re.compile(
    r"(?i)\b(how (many|much|big|large|long)|what (size|sizes|share|percentage|amount|budget|score)"
    r"|sizes?|cost|budget|scores?|points?|parameters?|when|date)\b|몇|얼마|규모|금액|점수|예산|언제"
)
_NAME_Q = re.compile(
    r"(?i)\b(which|who|whom|what company|name)\b|어디|누구|어느|어떤 (기업|회사|팀)"
)
_HAS_FIGURE = re.compile(r"\d")
_HAS_NAME = re.compile(
    r"(?<!^)(?<![.!?] )\b[A-Z][A-Za-z0-9]+|[\uAC00-\uD7A3]{2,}(?:클라우드|연구원|텔레콤)"
)


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
        groups = self.retriever.query_groups(question)
        hits = self.retriever.search(question, limit=6, groups=groups)
        if not hits or not self.supported(hits[0]):
            related = tuple(source_of(h.article) for h in hits[:3] if h.coverage > 0.2)
            reply = text("dont_know", lang)
            return Answer(answer=reply, grounded=False, mode="extractive", related=related)
        return self._compose(question, groups, hits)

    def _compose(self, question: str, groups: list[QueryGroup], hits: list[Hit]) -> Answer:
        """Greedy pick of sentences by what they add: each covers question words not yet covered.

        So a two-part question ("how many GPUs, and which provider?") gets a sentence for each
        part rather than two sentences saying the same thing.
        """
        usable = [h for h in hits if h.coverage >= self.anchored_threshold * 0.8][:3]
        weights = [g.weight * (1.5 if g.anchor else 1.0) for g in groups]
        total = sum(weights) or 1.0
        wants_number = bool(_NUMBER_Q.search(question))
        wants_name = bool(_NAME_Q.search(question))
        candidates: list[tuple[_Sentence, frozenset[int], float]] = []
        for rank, hit in enumerate(usable):
            title = hit.article.title
            body = hit.article.summary or title
            sentences = split_sentences(body)
            for pos, sentence in enumerate(sentences):
                terms = _sentence_terms(sentence)
                covered = frozenset(
                    i
                    for i, g in enumerate(groups)
                    if any(t in terms or _stem(t) in terms for t in g.terms)
                )
                bonus = 0.12 * (len(usable) - rank) / len(usable) - 0.003 * pos
                if wants_number and _HAS_FIGURE.search(sentence):
                    bonus += 0.2
                if wants_name and _HAS_NAME.search(sentence):
                    bonus += 0.08
                candidates.append((_Sentence(sentence, rank, pos, 0.0), covered, bonus))
        chosen: list[_Sentence] = []
        done: set[int] = set()
        budget = MAX_ANSWER_CHARS - 10
        used = 0
        while len(chosen) < 3 and candidates:
            best_i, best_score = -1, 0.0
            for i, (sent, covered, bonus) in enumerate(candidates):
                if used + len(sent.text) + 5 > budget:
                    continue
                gain = sum(weights[g] for g in covered if g not in done) / total
                score = gain + bonus
                if score > best_score:
                    best_i, best_score = i, score
            if best_i < 0 or (chosen and best_score < 0.1):
                break
            sent, covered, _ = candidates.pop(best_i)
            chosen.append(sent)
            done |= covered
            used += len(sent.text) + 5
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


def _clip(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
