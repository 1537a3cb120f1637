"""Answers without a model: pick the stored sentences that answer, cite them, or say so.

Grounding needs an article (or, for a question about two actors, a pair of articles) that holds
every constraint of the question (named actors, countries, years, months, rounds, figures),
covers enough of the rest (weighted by rarity), and offers the kind of thing asked for (a
figure for "how many", a date for "when", a place for "where"). Otherwise the bot says it does
not know and offers the nearest items. Sentences are then picked greedily by what each adds:
question words not yet covered and answer types not yet filled, so a two-part question gets a
sentence per part, even when the second part sits in another outlet's report of the story.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.answer_text import text
from bot.core.citations import neutralise_mentions
from bot.core.features import TextFeatures, text_lang
from bot.core.models import Answer, Article, Source
from bot.core.question import Question
from bot.core.retrieve import Hit, QueryGroup, Retriever, group_credit

MAX_ANSWER_CHARS = 600
MAX_QUESTION_CHARS = 2000  # the service cuts at 500 with a note; this only bounds the work
MAX_SENTENCES = 4
# What filling one wanted answer type is worth, against the share of question words covered.
_TYPE_BONUS = {"number": 0.3, "date": 0.3, "place": 0.3, "name": 0.2, "reason": 0.2, "money": 0.1}
_TITLE_PENALTY = 0.2
_POSITION_PENALTY = 0.03  # news puts the most telling sentence first
_SUBJECT_KINDS = ("entity", "country")
_LEDE_BONUS = 0.15
_SIBLING_PRIOR = 0.85  # another outlet's report of the same story (grouping can err)
_TRIVIAL_NUMBERS = frozenset({"n:0", "n:1"})
# Types whose absence from the evidence means the store cannot answer.
_REQUIRED_TYPES = ("number", "date", "place")
_MIN_ADDED = 0.08  # a further sentence must add at least this much


@dataclass(frozen=True)
class _Candidate:
    text: str
    article: Article
    order: tuple[int, int, int]  # evidence rank, article rank within it, position (-1: title)
    credits: tuple[float, ...]
    fillers: frozenset[str]
    prior: float


def source_of(article: Article) -> Source:
    published = article.published.date().isoformat() if article.published else None
    return Source(title=article.title, url=article.url, published=published, outlet=article.source)


def fillers(feats: TextFeatures, question: Question) -> frozenset[str]:
    """Answer types this text can fill with something the question does not already say."""
    own = question.own
    out: set[str] = set()
    if feats.numbers - own.numbers - feats.dates - _TRIVIAL_NUMBERS:
        out.add("number")
    if feats.dates - own.dates:
        out.add("date")
    if feats.places - own.places:
        out.add("place")
    if feats.names - own.names - {"e:" + k for k in question.entity_keys}:
        out.add("name")
    if feats.reason:
        out.add("reason")
    if feats.money and "number" in out:
        out.add("money")
    return frozenset(out)


class ExtractiveAnswerer:
    """Grounding decision and sentence picking; `threshold` is the share of the question's
    weighted words an article must cover (after every constraint is met)."""

    def __init__(
        self, retriever: Retriever, threshold: float = 0.5, pair_threshold: float = 0.3
    ) -> None:
        self.retriever = retriever
        self.threshold = threshold
        self.pair_threshold = pair_threshold

    # --- grounding ----------------------------------------------------------------------------
    def supported(self, hit: Hit) -> bool:
        """Every constraint present and enough of the rest."""
        return not hit.missing and hit.coverage >= self.threshold

    def evidence(self, question: Question, hits: list[Hit]) -> list[Hit]:
        """The hits an answer may rest on, best first; empty when the store cannot answer."""
        alone = [h for h in hits if self.supported(h) and self._types_ok(question, [h])]
        if alone:
            if question.recent:
                alone = _newest_first(alone)
            return [_prefer_news(alone)]
        return self._pair(question, hits)

    def _pair(self, question: Question, hits: list[Hit]) -> list[Hit]:
        """Two articles that together hold every constraint (a question about two actors)."""
        groups = question.groups
        named = [i for i, g in enumerate(groups) if g.anchor and g.kind == "entity"]
        if len(named) < 2:
            return []
        usable = [h for h in hits if h.coverage >= self.pair_threshold]
        for i, a in enumerate(usable):
            for b in usable[i + 1 :]:
                if set(a.missing) & set(b.missing):
                    continue
                if not (set(a.missing) | set(b.missing)) <= set(named):
                    continue
                if not a.missing and not b.missing:
                    continue
                joint = _joint_coverage(groups, [a, b])
                if joint >= self.threshold and self._types_ok(question, [a, b]):
                    return [a, b]
        return []

    def _types_ok(self, question: Question, hits: list[Hit]) -> bool:
        wanted = [t for t in _REQUIRED_TYPES if t in question.wants]
        if not wanted:
            return True
        have: set[str] = set()
        for hit in hits:
            for art in (hit.article, *hit.siblings[:3]):
                have |= fillers(self.retriever.features(art), question)
        return all(t in have for t in wanted)

    def grounding_hits(self, question: str, limit: int = 6) -> list[Hit]:
        """Hits for a model's context: the evidence first, then other close ones; [] if none."""
        parsed = self.retriever.parse(question)
        hits = self.retriever.search(question, limit=limit, parsed=parsed)
        evidence = self.evidence(parsed, hits)
        if not evidence:
            return []
        rest = [h for h in hits if h not in evidence and h.coverage >= self.threshold * 0.6]
        return [*evidence, *rest][:limit]

    # --- answering ----------------------------------------------------------------------------
    def answer(self, question: str) -> Answer:
        parsed = self.retriever.parse(question[:MAX_QUESTION_CHARS])
        # "Latest" questions look wider: the newest story may not be the best-matching one.
        wide = parsed.recent
        hits = self.retriever.search(
            parsed.text, limit=20 if wide else 10, pool=100 if wide else 40, parsed=parsed
        )
        evidence = self.evidence(parsed, hits)
        if not evidence:
            related = tuple(
                source_of(h.article)
                for h in hits
                if h.coverage >= 0.25 and h.anchor_coverage > 0 and h.article.kind != "starter"
            )[:3]
            reply = text("dont_know", parsed.lang)
            return Answer(answer=reply, grounded=False, mode="extractive", related=related)
        more = [h for h in hits if h not in evidence and self.supported(h)][:2]
        return self._compose(parsed, evidence, more)

    def _candidates(
        self, question: Question, evidence: list[Hit], more: list[Hit]
    ) -> list[_Candidate]:
        groups = question.groups
        out: list[_Candidate] = []
        seen: set[str] = set()
        top = max(evidence[0].coverage, 0.01)
        for ev_rank, hit in enumerate([*evidence, *more]):
            if ev_rank == 0 or ev_rank < len(evidence):
                hit_prior = 1.0 if ev_rank == 0 else 0.95
            else:
                hit_prior = min(0.85, 0.5 + 0.35 * hit.coverage / top)
            if hit.article.kind == "starter":
                hit_prior *= 0.9
            for art_rank, art in enumerate((hit.article, *hit.siblings[:3])):
                if art.id in seen:
                    continue
                seen.add(art.id)
                prior = hit_prior * (1.0 if art_rank == 0 else _SIBLING_PRIOR)
                # Every sentence of a report is about its subject: the actors and countries
                # the report names count, at half, for sentences that do not repeat them.
                about = self.retriever.features(art)
                inherited = [
                    0.5 * group_credit(g, about) if g.kind in _SUBJECT_KINDS else 0.0
                    for g in groups
                ]
                for pos, sentence, feats in self.retriever.sentences(art):
                    credits = tuple(
                        max(group_credit(g, feats), inherited[j]) for j, g in enumerate(groups)
                    )
                    weight = prior - (_TITLE_PENALTY if pos < 0 else _POSITION_PENALTY * pos)
                    out.append(
                        _Candidate(
                            sentence,
                            art,
                            (ev_rank, art_rank, pos),
                            credits,
                            fillers(feats, question),
                            weight,
                        )
                    )
        return out

    def _compose(self, question: Question, evidence: list[Hit], more: list[Hit]) -> Answer:
        groups = question.groups
        candidates = self._candidates(question, evidence, more)
        frame_room = max(len(text(k, question.lang)) for k in ("quoted_en", "quoted_ko")) + 1
        budget = MAX_ANSWER_CHARS - frame_room
        chosen = _pick(groups, question.wants, candidates, budget, len(evidence))
        if not chosen:
            art = evidence[0].article
            chosen = [
                _Candidate(_clip(art.summary or art.title, 400), art, (0, 0, 0), (), frozenset(), 1)
            ]
        chosen.sort(key=lambda c: c.order)
        cited: list[Article] = []
        parts: list[str] = []
        for cand in chosen:
            if cand.article not in cited:
                cited.append(cand.article)
            n = cited.index(cand.article) + 1
            sentence = neutralise_mentions(cand.text.rstrip())
            if cand.order[2] < 0 and not sentence.endswith((".", "!", "?")):
                sentence += "."
            parts.append(f"{sentence} [{n}]")
        body = " ".join(parts)
        frame = _frame(question.lang, [c.text for c in chosen])
        answer = f"{frame} {body}" if frame else body
        if len(answer) > MAX_ANSWER_CHARS:
            answer = _clip(answer, MAX_ANSWER_CHARS)
        sources = tuple(source_of(a) for a in cited)
        return Answer(answer=answer, grounded=True, mode="extractive", sources=sources)


def _pick(
    groups: list[QueryGroup],
    wants: frozenset[str],
    candidates: list[_Candidate],
    budget: int,
    parts: int,
) -> list[_Candidate]:
    """Greedy: each pick adds the most uncovered question weight and unfilled answer types.

    With evidence in `parts` articles (a question about two actors), each part first gets its
    own best sentence as if it were asked alone; then the rest compete, and what budget is left
    goes to the sentences of the main story that bear most on the question.
    """
    total = sum(g.weight for g in groups) or 1.0
    state = _State(covered=[0.0] * len(groups), filled=set())
    chosen: list[_Candidate] = []
    pool = list(candidates)

    def take(cand: _Candidate) -> None:
        nonlocal pool
        chosen.append(cand)
        state.add(cand, wants)
        pool = [c for c in pool if not _same_text(c, cand)]

    def room(cand: _Candidate) -> bool:
        return sum(len(c.text) + 6 for c in chosen) + len(cand.text) + 6 <= budget

    if parts > 1:
        for part in range(parts):
            own = [c for c in pool if c.order[0] == part and room(c)]
            fresh = _State(covered=[0.0] * len(groups), filled=set())
            best = max(own, key=lambda c: fresh.score(c, groups, wants, total), default=None)
            if best is not None and fresh.score(best, groups, wants, total) > 0:
                take(best)
    while pool and len(chosen) < MAX_SENTENCES:
        scored = [(state.score(c, groups, wants, total), c) for c in pool if room(c)]
        best_score, best = max(scored, key=lambda t: t[0], default=(0.0, None))
        if best is None or best_score <= 0 or (chosen and best_score < _MIN_ADDED):
            break
        take(best)
    # Fill: the main story's most relevant remaining sentences, while they fit.
    main = [
        c
        for c in pool
        if c.order[0] == 0
        and c.order[2] >= 0
        and _relevance(c, groups, total) > (0.03 if c.order[1] == 0 else 0.1)
    ]
    main.sort(key=lambda c: (-_relevance(c, groups, total) * c.prior, c.order))
    for cand in main:
        if len(chosen) >= MAX_SENTENCES:
            break
        if room(cand):
            take(cand)
    return chosen


@dataclass
class _State:
    covered: list[float]
    filled: set[str]

    def score(
        self, cand: _Candidate, groups: list[QueryGroup], wants: frozenset[str], total: float
    ) -> float:
        gain = sum(
            g.weight * max(0.0, c - self.covered[j])
            for j, (g, c) in enumerate(zip(groups, cand.credits, strict=True))
        )
        types = sum(_TYPE_BONUS[t] for t in cand.fillers & (wants - self.filled))
        # The main report's opening sentence says what happened: the first pick for an open
        # question ("what is the latest on X") that asks for no figure, date, place or reason.
        open_question = not (wants - {"name"})
        lede = _LEDE_BONUS if open_question and cand.order == (0, 0, 0) else 0.0
        if gain <= 0 and not types and not lede:
            return 0.0
        return (gain / total + types + lede) * cand.prior

    def add(self, cand: _Candidate, wants: frozenset[str]) -> None:
        self.covered = [max(a, b) for a, b in zip(self.covered, cand.credits, strict=True)]
        self.filled |= cand.fillers & wants


def _relevance(cand: _Candidate, groups: list[QueryGroup], total: float) -> float:
    return sum(g.weight * c for g, c in zip(groups, cand.credits, strict=True)) / total


def _same_text(a: _Candidate, b: _Candidate) -> bool:
    return a.article.id == b.article.id and a.text == b.text


def _joint_coverage(groups: list[QueryGroup], hits: list[Hit]) -> float:
    total = sum(g.weight for g in groups) or 1.0
    got = sum(g.weight * max(h.credits[i] for h in hits if h.credits) for i, g in enumerate(groups))
    return got / total


def _prefer_news(hits: list[Hit]) -> Hit:
    """The background file only when no news report answers about as well."""
    first = hits[0]
    if first.article.kind != "starter":
        return first
    for hit in hits[1:]:
        if hit.article.kind != "starter" and hit.coverage >= first.coverage - 0.15:
            return hit
    return first


def _newest_first(hits: list[Hit]) -> list[Hit]:
    """For "latest" questions: the newest dated story among those nearly as good as the best."""
    best = max(h.coverage for h in hits)
    close = [h for h in hits if h.coverage >= best * 0.65]
    dated = sorted(
        (h for h in close if h.when), key=lambda h: h.when.timestamp() if h.when else 0.0
    )[::-1]
    rest = [h for h in hits if h not in dated]
    return [*dated, *rest]


def _frame(lang: str, sentences: list[str]) -> str:
    """A few words in the asker's language when every quoted sentence is in the other one."""
    langs = {text_lang(s) for s in sentences}
    if langs != {"ko" if lang == "en" else "en"}:
        return ""
    return text("quoted_ko" if lang == "en" else "quoted_en", lang)


def _clip(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
