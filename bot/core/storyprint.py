"""A report reduced to what tells one event from another: actors, figures, dates, rare words.

Entities, figures and dates are language-free, so an English and a Korean report of one event
share them; words only count within one script. Title words get their own upper-case prefix so
they can weigh more than body words.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from bot.core.datemention import month_day_tokens
from bot.core.textindex import STOPWORDS, hangul_words, korean_stems, words

_NUMBER_RE = re.compile(r"\d[\d,]*(?:\.\d+)?")
_YEAR_RE = re.compile(r"^(19|20)\d\d$")
# Words every report of the field carries; they say nothing about which event it is.
_STOP = STOPWORDS | frozenset(
    [
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
        "three",
        "four",
        "five",
        "percent",
        "billion",
        "million",
        "won",
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
        return frozenset(script_of(k) for k in self.features)

    def family_totals(self, weight: Callable[[str], float]) -> dict[str, float]:
        """Summed feature weight per comparable family (language-free, Latin, Hangul)."""
        totals: dict[str, float] = defaultdict(float)
        for key in self.features:
            totals[script_of(key)] += weight(key)
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
            elif tok.startswith(("n", "d")):
                nums.add(tok)
            else:
                wrds.add(tok)
        return cls(frozenset(ents), frozenset(countries), frozenset(nums), frozenset(wrds))


def fingerprint(
    title: str, summary: str, entities: Iterable[str], countries: Iterable[str]
) -> Fingerprint:
    text = f"{title}\n{summary}"
    return Fingerprint(
        entities=frozenset(entities),
        countries=frozenset(countries),
        numbers=frozenset(_numbers(text) | month_day_tokens(text)),
        words=frozenset(_content_words(text) | _content_words(title, title=True)),
    )


# Actors, figures and dates say most about which event a report is of; title words more than
# body words, which mostly repeat the background every report of a programme carries.
_KIND_WEIGHT = {"e": 2.0, "n": 1.5, "d": 1.5, "W": 1.5, "K": 1.5, "w": 0.15, "k": 0.15}


def kind_weight(key: str) -> float:
    return _KIND_WEIGHT.get(key[0], 1.0)


def script_of(key: str) -> str:
    """Which comparable family a feature belongs to: language-free, or a script's words."""
    return key[0].lower() if key[0] in "wkWK" else "*"


def same_actors(a: Fingerprint, b: Fingerprint) -> bool:
    """Reports of one event name mostly the same acting countries (UAE+US is not Saudi+US)."""
    if not a.countries or not b.countries:
        return True
    shared = len(a.countries & b.countries)
    return shared > 0 and shared / len(a.countries | b.countries) >= 0.5


def comparable_total(totals: dict[str, float], scripts: frozenset[str]) -> float:
    """The part of a report's weight another could share: language-free keys, and words in
    the scripts the other report is written in."""
    return sum(w for fam, w in totals.items() if fam == "*" or fam in scripts)


def harmonic_share(shared: float, total_a: float, total_b: float) -> float:
    """Harmonic mean of the shared weight's share in each report (0..1)."""
    in_a, in_b = shared / total_a, shared / total_b
    return 2 * in_a * in_b / (in_a + in_b)


def overlap(a: Fingerprint, b: Fingerprint, weight: Callable[[str], float]) -> float:
    """How alike two reports are (0..1): harmonic mean of each one's weighted share in the other.

    Symmetric on purpose: a short item wholly inside a long background piece is not the same
    report. Words only count within a script both have, so a Korean report is not penalised
    for sharing no English words with an English one.
    """
    if not same_actors(a, b):
        return 0.0
    shared = sum(weight(k) for k in a.features & b.features)
    if not shared:
        return 0.0
    return harmonic_share(
        shared,
        comparable_total(a.family_totals(weight), b.scripts),
        comparable_total(b.family_totals(weight), a.scripts),
    )
