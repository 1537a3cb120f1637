"""English-Korean domain vocabulary: lets a question in one language meet sources in the other.

The gazetteer translates names (한국 ↔ Korea); this translates the words around them
(탈락 ↔ eliminated, 보급률 ↔ penetration, 클러스터 ↔ cluster). Each concept is a set of
English and Korean forms; text and questions are both reduced to concept ids, so matching is
symmetric. English forms are compared after a light stemmer, Korean ones after particles are
stripped, and a Korean compound (단계평가) yields the concepts of its parts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bot.core.textindex import korean_stems

DATA_PATH = Path(__file__).with_name("data") / "lexicon.json"
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_WORD = re.compile(r"[^\W_]+")


def stem_en(word: str) -> str:
    """A crude English stem that makes select/selected/selection and plan/planned meet."""
    w = word.lower()
    if len(w) <= 3 or not w.isascii() or not w.isalpha():
        return w
    base = w[:-6] if w.endswith("ations") else w[:-5] if w.endswith("ation") else ""
    if len(base) >= 3:
        w = base + "at"
    else:
        for suffix in ("ments", "ment", "ings", "ing", "ions", "ion", "ies", "ied", "ed"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        else:
            if w.endswith("es") and w[:-2].endswith(("ss", "x", "z", "ch", "sh")):
                w = w[:-2]
            elif w.endswith("s") and not w.endswith(("ss", "is", "ous")):
                w = w[:-1]
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsaeiou":
        w = w[:-1]
    if len(w) > 3 and w[-1] in "ey":
        w = w[:-1]
    return w


def stem_phrase(text: str) -> str:
    return " ".join(stem_en(w) for w in _WORD.findall(text.lower()))


@dataclass
class Concept:
    id: str
    kind: str
    en: tuple[str, ...]
    ko: tuple[str, ...]


@dataclass
class Lexicon:
    """Concept lookup for English stems, English phrases and Korean words."""

    concepts: dict[str, Concept] = field(default_factory=dict)
    _en: dict[str, set[str]] = field(default_factory=dict)
    _en_phrases: dict[str, set[str]] = field(default_factory=dict)
    _ko: dict[str, set[str]] = field(default_factory=dict)
    _ko_prefix: dict[str, set[str]] = field(default_factory=dict)
    _ko_phrases: dict[str, set[str]] = field(default_factory=dict)
    _broader: dict[str, set[str]] = field(default_factory=dict)
    _phrase_heads: dict[str, list[str]] = field(default_factory=dict)

    _default: ClassVar[Lexicon | None] = None

    @classmethod
    def load(cls) -> Lexicon:
        """The packaged lexicon, parsed once per process."""
        if cls._default is None:
            with DATA_PATH.open(encoding="utf-8") as fh:
                cls._default = cls.from_data(json.load(fh))
        return cls._default

    @classmethod
    def from_data(cls, data: dict[str, object]) -> Lexicon:
        lex = cls()
        raw = data.get("concepts", [])
        assert isinstance(raw, list)
        for item in raw:
            en = tuple(str(x) for x in item.get("en", ()))
            ko = tuple(str(x) for x in item.get("ko", ()))
            base = stem_phrase(en[0]) if en else ko[0]
            cid = base
            n = 2
            while cid in lex.concepts:
                cid = f"{base}~{n}"
                n += 1
            lex.concepts[cid] = Concept(cid, str(item.get("kind", "word")), en, ko)
            for narrow in item.get("narrower", ()):
                lex._broader.setdefault(stem_phrase(str(narrow)), set()).add(cid)
            for form in en:
                stemmed = stem_phrase(form)
                if not stemmed:
                    continue
                table = lex._en_phrases if " " in stemmed else lex._en
                table.setdefault(stemmed, set()).add(cid)
            for form in ko:
                if form.endswith("*"):
                    lex._ko_prefix.setdefault(form[:-1], set()).add(cid)
                elif " " in form:
                    lex._ko_phrases.setdefault(form, set()).add(cid)
                else:
                    lex._ko.setdefault(form, set()).add(cid)
        return lex

    # --- lookups ------------------------------------------------------------------------------
    def english(self, stem: str) -> set[str]:
        return self._en.get(stem, set())

    def english_phrases(self, stemmed_text: str) -> set[str]:
        """Concepts of multi-word forms found in a space-joined run of English stems."""
        if not self._phrase_heads:
            for phrase in self._en_phrases:
                self._phrase_heads.setdefault(phrase.split(" ", 1)[0], []).append(phrase)
        padded = f" {stemmed_text} "
        out: set[str] = set()
        for head in set(stemmed_text.split()) & self._phrase_heads.keys():
            for phrase in self._phrase_heads[head]:
                if f" {phrase} " in padded:
                    out |= self._en_phrases[phrase]
        return out

    def korean(self, word: str) -> set[str]:
        """Concepts of a Hangul word: itself, its stems, its prefix forms and compound parts."""
        out: set[str] = set()
        candidates = [word, *korean_stems(word)]
        for cand in candidates:
            out |= self._ko.get(cand, set())
        for size in range(min(len(word), 5), 0, -1):
            out |= self._ko_prefix.get(word[:size], set())
        stem = min(candidates, key=len)
        if len(stem) >= 3:
            # Compound parts: a known word at either end, or any known word of 3+ syllables.
            for size in range(2, min(len(stem), 6) + 1):
                for start in range(0, len(stem) - size + 1):
                    part = stem[start : start + size]
                    if part == stem or part not in self._ko:
                        continue
                    if start == 0 or start + size == len(stem) or size >= 3:
                        out |= self._ko[part]
        return out

    def korean_phrases(self, text: str) -> set[str]:
        out: set[str] = set()
        for phrase, cids in self._ko_phrases.items():
            if phrase in text:
                out |= cids
        return out

    def broader(self, cids: set[str]) -> set[str]:
        """Concepts implied in stored text by the ones present (parameters imply a size)."""
        out: set[str] = set()
        for cid in cids:
            out |= self._broader.get(cid, set())
        return out

    def kind(self, cid: str) -> str:
        concept = self.concepts.get(cid)
        return concept.kind if concept else "word"

    def surfaces(self, cid: str, limit: int = 8) -> list[str]:
        """Search forms of a concept in both languages (prefix forms keep their `*`)."""
        concept = self.concepts.get(cid)
        if concept is None:
            return []
        forms = [f for f in concept.ko if " " not in f] + list(concept.en)
        return forms[:limit]


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))
