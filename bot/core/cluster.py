"""Fold reports of the same event (across outlets and languages) into one story.

Incremental: each new relevant item is compared only with recent stories that share an entity,
a figure or a rare word with it (an inverted index kept in memory and seeded from the store), so
the cost per item stays flat as the store grows. Cross-language matches lean on gazetteer
entities and figures (numbers survive translation); same-language matches also use words.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from bot.core.ports import StoryCandidate
from bot.core.textindex import hangul_words, korean_stems, words

WINDOW = timedelta(days=14)
_NUMBER_RE = re.compile(r"\d[\d,]*(?:\.\d+)?")
_YEAR_RE = re.compile(r"^(19|20)\d\d$")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "as",
        "at",
        "from",
        "that",
        "this",
        "its",
        "it",
        "has",
        "have",
        "had",
        "will",
        "would",
        "new",
        "says",
        "said",
        "after",
        "over",
        "into",
        "about",
        "than",
        "more",
        "its",
        "their",
        "his",
        "her",
        "ai",
        "artificial",
        "intelligence",
        "model",
        "models",
        "government",
        "national",
        "korea",
        "korean",
        "south",
        "country",
        "first",
        "two",
        "three",
        "four",
        "five",
        "one",
        "percent",
        "billion",
        "million",
        "won",
        "per",
        "also",
        "said",
        "plans",
        "plan",
    ]
)


_KO_VERB_ENDINGS = ("다", "며", "고", "해", "서", "면", "록", "지만", "는데", "니다")
_KO_STOP = frozenset(
    {
        "정부",
        "국가",
        "기업",
        "한국",
        "국내",
        "모델",
        "인공지능",
        "이번",
        "지난",
        "올해",
        "관련",
        "위해",
        "통해",
        "대한",
        "이후",
    }
)


def _numbers(text: str) -> set[str]:
    out: set[str] = set()
    for raw in _NUMBER_RE.findall(text):
        num = raw.replace(",", "").rstrip(".")
        if len(num) < 2 or _YEAR_RE.match(num):
            continue
        out.add("n" + num)
    return out


def _content_words(text: str, title: bool = False) -> set[str]:
    """Salient words: Latin words (cut to a crude stem) and Korean noun stems (verbs skipped).

    Title words get their own upper-case prefix so they can weigh more than body words.
    """
    latin, korean = ("W", "K") if title else ("w", "k")
    out: set[str] = set()
    for w in words(text):
        if len(w) > 3 and w.isascii() and w not in _STOP and not w.isdigit():
            out.add(latin + w[:7])
    for w in hangul_words(text):
        if w.endswith(_KO_VERB_ENDINGS):
            continue
        stems = korean_stems(w)
        stem = min([w, *stems], key=len) if stems else w
        if len(stem) >= 2 and stem not in _KO_STOP:
            out.add(korean + stem)
    return out


@dataclass(frozen=True)
class Fingerprint:
    entities: frozenset[str]
    countries: frozenset[str]
    numbers: frozenset[str]
    words: frozenset[str]

    @cached_property
    def features(self) -> frozenset[str]:
        return frozenset({"e" + e for e in self.entities} | self.numbers | self.words)

    @cached_property
    def scripts(self) -> frozenset[str]:
        return frozenset(_script(k) for k in self.features)

    def family_totals(self, weight: Callable[[str], float]) -> dict[str, float]:
        """Summed feature weight per comparable family (language-free, Latin, Hangul)."""
        totals: dict[str, float] = defaultdict(float)
        for key in self.features:
            totals[_script(key)] += weight(key)
        return totals

    def signature(self) -> str:
        parts = [
            *sorted("e" + e for e in self.entities),
            *sorted(self.numbers),
            *sorted(self.words),
        ]
        return " ".join(parts)

    @classmethod
    def from_signature(cls, sig: str, countries: Iterable[str]) -> Fingerprint:
        ents, nums, wrds = set(), set(), set()
        for tok in sig.split():
            if tok.startswith("e"):
                ents.add(tok[1:])
            elif tok.startswith("n"):
                nums.add(tok)
            else:
                wrds.add(tok)
        return cls(frozenset(ents), frozenset(countries), frozenset(nums), frozenset(wrds))

    def merge(self, other: Fingerprint) -> Fingerprint:
        # Cap growth so a long-running story does not swallow everything near it.
        return Fingerprint(
            self.entities | other.entities,
            self.countries | other.countries,
            frozenset(list(self.numbers | other.numbers)[:60]),
            frozenset(list(self.words | other.words)[:200]),
        )


def fingerprint(
    title: str, summary: str, entities: Iterable[str], countries: Iterable[str]
) -> Fingerprint:
    text = f"{title}\n{summary}"
    return Fingerprint(
        entities=frozenset(entities),
        countries=frozenset(countries),
        numbers=frozenset(_numbers(text)),
        words=frozenset(_content_words(text) | _content_words(title, title=True)),
    )


_KIND_WEIGHT = {"e": 2.0, "n": 1.5, "W": 1.5, "K": 1.5, "w": 0.3, "k": 0.3}


def _script(key: str) -> str:
    """Which comparable family a feature belongs to: language-free, or a script's words."""
    return key[0].lower() if key[0] in "wkWK" else "*"


def _same_actors(item: Fingerprint, story: Fingerprint) -> bool:
    """Reports of one event name mostly the same acting countries (UAE+US is not Saudi+US)."""
    if not item.countries or not story.countries:
        return True
    shared = len(item.countries & story.countries)
    return shared > 0 and shared / len(item.countries | story.countries) >= 0.5


def similarity(
    item: Fingerprint, story: Fingerprint, weight: Callable[[str], float] = lambda _k: 1.0
) -> float:
    """Weighted containment of the item's salient features in the story (0..1).

    Entities and figures are compared across languages; words only within a script the story
    has words in, so a Korean report is not penalised for sharing no English words.
    """
    if not _same_actors(item, story):
        return 0.0
    totals = item.family_totals(weight)
    total = sum(w for fam, w in totals.items() if fam == "*" or fam in story.scripts)
    shared = sum(weight(k) for k in item.features & story.features)
    return shared / total if total else 0.0


def story_id_for(article_id: str) -> str:
    return "s" + hashlib.blake2b(article_id.encode(), digest_size=6).hexdigest()


class StoryGrouper:
    """Assigns story ids; holds recent stories in memory, indexed by their salient tokens."""

    def __init__(self, threshold: float = 0.1, window: timedelta = WINDOW) -> None:
        self.threshold = threshold
        self.window = window
        self._stories: dict[str, StoryCandidate] = {}
        self._prints: dict[str, Fingerprint] = {}
        self._index: dict[str, set[str]] = defaultdict(set)
        self._df: dict[str, int] = defaultdict(int)

    def seed(self, stories: Iterable[StoryCandidate]) -> None:
        for story in stories:
            if story.relevant:
                self._remember(story, Fingerprint.from_signature(story.signature, story.countries))

    def _keys(self, fp: Fingerprint) -> frozenset[str]:
        return fp.features

    def _norm_weight(self, key: str) -> float:
        """Weight as a share of the largest possible one, so thresholds do not drift with N."""
        n = len(self._stories) + 1
        return self._weight(key) / (math.log(n + 1) + 1.0)

    def _weight(self, key: str) -> float:
        """Inverse story frequency: a word most stories share says little about sameness."""
        n = len(self._stories) + 1
        idf = math.log((n + 1) / (self._df.get(key, 0) + 1)) + 1.0
        return idf * _KIND_WEIGHT.get(key[0], 1.0)

    def _remember(self, story: StoryCandidate, fp: Fingerprint) -> None:
        old = self._prints.get(story.id)
        if old is not None:
            for key in self._keys(old):
                self._index[key].discard(story.id)
        self._stories[story.id] = story
        self._prints[story.id] = fp
        for key in self._keys(fp):
            if story.id not in self._index[key]:
                self._index[key].add(story.id)
                self._df[key] += 1

    def assign(
        self,
        *,
        article_id: str,
        title: str,
        url: str,
        summary: str,
        source: str,
        when: datetime,
        dated: bool,
        relevant: bool,
        countries: tuple[str, ...],
        topics: tuple[str, ...],
        entities: tuple[str, ...],
    ) -> StoryCandidate:
        """The story this item belongs to, updated with it (new or existing)."""
        if not relevant:  # not grouped: each such item is its own story, no fingerprint needed
            return StoryCandidate(
                id=story_id_for(article_id),
                title=title,
                url=url,
                countries=countries,
                topics=topics,
                entities=tuple(sorted(entities)),
                signature="",
                relevant=False,
                first_seen=when,
                last_seen=when,
                event_at=when if dated else None,
                article_count=1,
                sources=(source,),
            )
        fp = fingerprint(title, summary, entities, countries)
        if relevant:
            best = self._best_match(fp, when, dated)
            if best is not None:
                story = self._stories[best]
                merged_fp = self._prints[best].merge(fp)
                updated = replace(
                    story,
                    countries=tuple(sorted(set(story.countries) | set(countries))),
                    topics=tuple(dict.fromkeys([*story.topics, *topics])),
                    entities=tuple(sorted(merged_fp.entities)),
                    signature=merged_fp.signature(),
                    last_seen=max(story.last_seen, when),
                    event_at=story.event_at or (when if dated else None),
                    article_count=story.article_count + 1,
                    sources=tuple(dict.fromkeys([*story.sources, source])),
                )
                self._remember(updated, merged_fp)
                return updated
        story = StoryCandidate(
            id=story_id_for(article_id),
            title=title,
            url=url,
            countries=countries,
            topics=topics,
            entities=tuple(sorted(fp.entities)),
            signature=fp.signature(),
            relevant=relevant,
            first_seen=when,
            last_seen=when,
            event_at=when if dated else None,
            article_count=1,
            sources=(source,),
        )
        if relevant:
            self._remember(story, fp)
        return story

    def _best_match(self, fp: Fingerprint, when: datetime, dated: bool) -> str | None:
        weights = {key: self._weight(key) for key in fp.features}
        shared: dict[str, float] = defaultdict(float)
        for key, w in weights.items():
            ids = self._index.get(key)
            # Skip tokens shared by very many stories: they say nothing about sameness.
            if not ids or len(ids) > 60:
                continue
            for sid in ids:
                shared[sid] += w
        # Without a date the time window cannot rule anything out: ask for more overlap.
        best_id, best_score = None, self.threshold * (1.0 if dated else 1.6)
        totals = fp.family_totals(weights.__getitem__)
        for sid in sorted(shared, key=shared.__getitem__, reverse=True)[:12]:
            story = self._stories[sid]
            if dated and story.event_at and abs(when - story.event_at) > self.window:
                continue
            sp = self._prints[sid]
            if not _same_actors(fp, sp):
                continue
            total = sum(w for fam, w in totals.items() if fam == "*" or fam in sp.scripts)
            score = sum(weights[k] for k in fp.features & sp.features) / total if total else 0.0
            if score >= best_score:
                best_id, best_score = sid, score
        return best_id
