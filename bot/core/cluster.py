"""Fold reports of the same event (across outlets and languages) into one story.

Incremental: each new relevant item is compared only with recent stories that share an entity,
a figure or a rare word with it (an inverted index kept in memory and seeded from the store), so
the cost per item stays flat as the store grows. Cross-language matches lean on gazetteer
entities and figures (numbers survive translation); same-language matches also use words.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.core.ports import StoryCandidate
from bot.core.textindex import hangul_words, korean_stems, words

WINDOW = timedelta(days=10)
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


def _numbers(text: str) -> set[str]:
    out: set[str] = set()
    for raw in _NUMBER_RE.findall(text):
        num = raw.replace(",", "").rstrip(".")
        if len(num) < 2 or _YEAR_RE.match(num):
            continue
        out.add("n" + num)
    return out


def _content_words(text: str) -> set[str]:
    out: set[str] = set()
    for w in words(text):
        if len(w) > 3 and w.isascii() and w not in _STOP and not w.isdigit():
            out.add("w" + w[:7])
    for w in hangul_words(text):
        stems = korean_stems(w)
        stem = min([w, *stems], key=len) if stems else w
        if len(stem) >= 2:
            out.add("k" + stem)
    return out


@dataclass(frozen=True)
class Fingerprint:
    entities: frozenset[str]
    countries: frozenset[str]
    numbers: frozenset[str]
    words: frozenset[str]

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
        words=frozenset(_content_words(text)),
    )


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def similarity(item: Fingerprint, story: Fingerprint) -> float:
    """0..1; entities and figures carry across languages, words within one."""
    if item.countries and story.countries and not (item.countries & story.countries):
        return 0.0
    ent = _overlap(item.entities, story.entities)
    num = _overlap(item.numbers, story.numbers)
    wrd = _overlap(item.words, story.words)
    shared_nums = len(item.numbers & story.numbers)
    score = 0.35 * ent + 0.35 * num + 0.30 * wrd
    if shared_nums >= 2:
        score += 0.15
    return min(score, 1.0)


def story_id_for(article_id: str) -> str:
    return "s" + hashlib.blake2b(article_id.encode(), digest_size=6).hexdigest()


class StoryGrouper:
    """Assigns story ids; holds recent stories in memory, indexed by their salient tokens."""

    def __init__(self, threshold: float = 0.42, window: timedelta = WINDOW) -> None:
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

    def _keys(self, fp: Fingerprint) -> set[str]:
        return {"e" + e for e in fp.entities} | set(fp.numbers) | set(fp.words)

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
        relevant: bool,
        countries: tuple[str, ...],
        topics: tuple[str, ...],
        entities: tuple[str, ...],
    ) -> StoryCandidate:
        """The story this item belongs to, updated with it (new or existing)."""
        fp = fingerprint(title, summary, entities, countries)
        if relevant:
            best = self._best_match(fp, when)
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
            event_at=when,
            article_count=1,
            sources=(source,),
        )
        if relevant:
            self._remember(story, fp)
        return story

    def _best_match(self, fp: Fingerprint, when: datetime) -> str | None:
        counts: dict[str, int] = defaultdict(int)
        for key in self._keys(fp):
            ids = self._index.get(key)
            # Skip tokens shared by very many stories: they say nothing about sameness.
            if not ids or len(ids) > 200:
                continue
            for sid in ids:
                counts[sid] += 1
        best_id, best_score = None, self.threshold
        for sid in sorted(counts, key=counts.__getitem__, reverse=True)[:50]:
            story = self._stories[sid]
            if abs(when - (story.event_at or story.first_seen)) > self.window:
                continue
            score = similarity(fp, self._prints[sid])
            if score >= best_score:
                best_id, best_score = sid, score
        return best_id
