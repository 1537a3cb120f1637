"""Names of national AI actors (countries, agencies, champions, models, compute) and where they
occur in text.

Latin-script names match on word boundaries and ignore case unless listed as case-sensitive;
names in Hangul, kana, CJK or Arabic match as substrings so that attached particles
(네이버가, 과기정통부는) do not hide them. Longer names win over the shorter names they
contain, and "blockers" (LG 트윈스, 인도네시아) swallow text that would otherwise be misread
as an actor.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from bot.core.models import Mention

log = logging.getLogger(__name__)

DATA_PATH = Path(__file__).with_name("data") / "gazetteer.json"

# Letters that make a word continue: a Latin name must not be glued to one of these.
LATIN_LETTERS = "0-9A-Za-z\u00c0-\u024f"
_LATIN_CHAR = re.compile(f"[{LATIN_LETTERS}]")
# Word-start guards: before the pattern, or after a word's first character.
WORD_START_BEFORE = f"(?<![{LATIN_LETTERS}])"
WORD_START = f"(?<![{LATIN_LETTERS}].)"
# Any script matched as substrings (Hangul, kana, CJK, Arabic...): skip that pass without one.
NON_LATIN = re.compile("[\u0370-\u1fff\u2e80-\ufaff\uff00-\uffef]")
_SEP_CHARS = " -\u00a0\u2010\u2011\u2012\u2013_"
_SEP_TOKEN = "\x00"
_END = "\x01"  # trie marker: a word ends here (word boundary follows)
_STEM = "\x02"  # trie marker: a stem ends here (anything may follow)
_SEP_PATTERN = "[\\s\\-\u2010-\u2013_]?"
_SEP_STRIP = re.compile("[\\s\\-\u2010-\u2013_]+")
_LATIN_ONLY = re.compile(r"^[\x00-\x7f\u00a0-\u024f\u2010-\u2019]+$")
_KIND_WEIGHT = {
    "agency": 1.0,
    "program": 1.0,
    "law": 1.0,
    "compute": 0.9,
    "model": 0.9,
    "lab": 0.7,
    "person": 0.7,
}
_ROLES = ("names", "demonyms", "places")


_HANGUL = re.compile("[\uac00-\ud7a3]")


def normalize_alias(text: str) -> str:
    """Lookup form: case and separators (space, hyphen) do not matter."""
    return _SEP_STRIP.sub("", text.lower())


def lower_same_length(text: str) -> str:
    """Lower case without moving offsets (str.lower turns İ into two characters)."""
    low = text.replace("\u0130", "i").lower()
    if len(low) != len(text):
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low


def is_latin(text: str) -> bool:
    return bool(_LATIN_ONLY.match(text))


def trie_regex(words: Iterable[str], end: str = "", after_first: str = "") -> str:
    """One alternation for many literals, shared prefixes factored out, longer matches tried first.

    Python's `re` tries alternatives in order, so a flat list of 2,000 names is slow and may stop
    at a shorter name; a trie makes each position cost one branch per character. Spaces and
    hyphens in a word become an optional separator; `end` is appended where a word ends, except
    after a word written with a trailing `*` (a stem such as `regulat*`). `after_first` goes after
    each word's first character: a start-of-word guard placed there (rather than before the
    pattern) keeps the engine's fast scan for possible first characters; it is only added after
    a Latin letter or digit.
    """
    root: dict[str, Any] = {}
    for word in words:
        stem = word.endswith("*") and len(word) > 1
        tokens = _tokens(word[:-1] if stem else word)
        if not tokens:
            continue
        node = root
        for ch in tokens:
            node = node.setdefault(ch, {})
        node[_STEM if stem else _END] = True

    def emit(node: dict[str, Any], depth: int = 0) -> str:
        alts = [
            (_SEP_PATTERN if ch == _SEP_TOKEN else re.escape(ch))
            + (after_first if depth == 0 and _LATIN_CHAR.match(ch) else "")
            + emit(child, depth + 1)
            for ch, child in sorted((k, v) for k, v in node.items() if k not in (_END, _STEM))
        ]
        if _END in node:
            alts.append(end)
        if _STEM in node:
            alts.append("")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    return emit(root) if root else "(?!)"


def _tokens(word: str) -> list[str]:
    out: list[str] = []
    for ch in word:
        if ch in _SEP_CHARS:
            if out and out[-1] != _SEP_TOKEN:
                out.append(_SEP_TOKEN)
        else:
            out.append(ch)
    while out and out[-1] == _SEP_TOKEN:
        out.pop()
    return out


def flag(code: str) -> str:
    """Regional-indicator emoji for an ISO alpha-2 code (EU has its own pair: 🇪🇺)."""
    code = code.strip().upper()
    if code == "UK":
        code = "GB"
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code)


def _flag_to_code(text: str) -> str | None:
    chars = [c for c in text if 0x1F1E6 <= ord(c) <= 0x1F1FF]
    if len(chars) != 2:
        return None
    return "".join(chr(ord(c) - 0x1F1E6 + ord("A")) for c in chars)


@dataclass(frozen=True, slots=True)
class Entry:
    """One actor. `weight` says how strongly naming it signals a national effort (0 for big tech);
    `topics` are what naming it implies (a compute strategy is about compute and policy)."""

    key: str
    kind: str
    country: str | None
    names: Mapping[str, tuple[str, ...]]
    ai: bool = False
    weight: float = 0.0
    hq: str | None = None
    needs: frozenset[str] = frozenset()
    topics: tuple[str, ...] = ()

    def aliases(self) -> list[str]:
        return [name for names in self.names.values() for name in names]


@dataclass(frozen=True, slots=True)
class Hit:
    """A found name with what the classifier needs beyond a Mention: the role of a country name."""

    entry: Entry
    role: str  # "name", "demonym", "place" for countries; "entity" otherwise
    start: int
    end: int

    def mention(self) -> Mention:
        return Mention(
            key=self.entry.key,
            kind=self.entry.kind,
            country=self.entry.country,
            start=self.start,
            end=self.end,
        )


@dataclass(frozen=True, slots=True)
class _Alias:
    entry: Entry | None  # None: a blocker
    role: str
    weak: bool


class Gazetteer:
    """Looks up actors in text and names of countries; build once, share everywhere."""

    _default: Gazetteer | None = None

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._entries: dict[str, Entry] = {}
        self._countries: dict[str, Entry] = {}
        self._country_roles: dict[str, dict[str, list[str]]] = {}
        self._ci: dict[str, _Alias] = {}
        self._cs: dict[str, _Alias] = {}
        self._cjk: dict[str, _Alias] = {}
        # Surface forms per matcher, filled while registering, compiled once at the end.
        self._raw: dict[str, set[str]] = {"ci": set(), "cs": set(), "cjk": set()}
        # Korean headlines name countries by one Hanja (中 딥시크, 韓·美): trusted only there.
        self._hanja: dict[str, Entry] = {}
        for raw in data.get("countries", ()):
            self._add_country(raw)
        for raw in data.get("entities", ()):
            self._add_entity(raw)
        for text in data.get("blockers", ()):
            self._register(text, _Alias(None, "block", False), case=False)
        self._compile()

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls) -> Gazetteer:
        """The packaged gazetteer, parsed once per process."""
        if cls._default is None:
            cls._default = cls.from_file(DATA_PATH)
        return cls._default

    @classmethod
    def from_file(cls, path: Path) -> Gazetteer:
        with path.open(encoding="utf-8") as fh:
            return cls(json.load(fh))

    def _add_country(self, raw: Mapping[str, Any]) -> None:
        code = str(raw["code"]).upper()
        roles = {role: _lang_lists(raw.get(role, {})) for role in _ROLES}
        names = {lang: tuple(v) for lang, v in roles["names"].items()}
        entry = Entry(key=code, kind="country", country=code, names=names)
        self._countries[code] = entry
        self._country_roles[code] = {
            role: [n for v in lists.values() for n in v] for role, lists in roles.items()
        }
        for char in raw.get("headline_hanja", ()):
            self._hanja[char] = entry
        case = set(raw.get("case", ()))
        for role, role_name in (("names", "name"), ("demonyms", "demonym"), ("places", "place")):
            for alias in self._country_roles[code][role]:
                self._register(alias, _Alias(entry, role_name, False), case=alias in case)

    def _add_entity(self, raw: Mapping[str, Any]) -> None:
        kind = str(raw["kind"])
        country = raw.get("country")
        ai = bool(raw.get("ai") or kind == "model")
        if "weight" in raw:
            weight = float(raw["weight"])
        elif country is None:
            weight = 0.0
        elif kind == "company":
            weight = 1.0 if ai else 0.3
        else:
            weight = _KIND_WEIGHT.get(kind, 0.5)
        entry = Entry(
            key=str(raw["key"]),
            kind=kind,
            country=country,
            names={lang: tuple(v) for lang, v in _lang_lists(raw.get("names", {})).items()},
            ai=ai,
            weight=weight,
            hq=raw.get("hq"),
            needs=frozenset(raw.get("needs", ())),
            topics=tuple(raw.get("topics", ())),
        )
        if entry.key in self._entries:
            raise ValueError(f"duplicate gazetteer key {entry.key!r}")
        self._entries[entry.key] = entry
        weak = set(raw.get("weak", ()))
        case = set(raw.get("case", ()))
        for alias in entry.aliases():
            self._register(alias, _Alias(entry, "entity", alias in weak), case=alias in case)

    def _register(self, alias: str, info: _Alias, *, case: bool) -> None:
        alias = alias.strip()
        if not alias:
            return
        if not is_latin(alias):
            matcher, table, key = "cjk", self._cjk, normalize_alias(alias)
        elif case:
            matcher, table, key = "cs", self._cs, _SEP_STRIP.sub("", alias)
        else:
            matcher, table, key = "ci", self._ci, normalize_alias(alias)
        old = table.get(key)
        if old is not None and old.entry is not info.entry:
            log.debug("gazetteer alias %r kept for %s", alias, old.entry and old.entry.key)
            return
        table[key] = info
        self._raw[matcher].add(alias if matcher == "cs" else alias.lower())

    def _compile(self) -> None:
        # Case-insensitive passes run on lowered text: IGNORECASE would disable the engine's
        # first-character scan and make them several times slower.
        end = f"(?![{LATIN_LETTERS}])"
        self._re_ci = re.compile(WORD_START_BEFORE + trie_regex(self._raw["ci"], end))
        self._re_cs = re.compile(trie_regex(self._raw["cs"], end, WORD_START))
        self._re_cjk = re.compile(trie_regex(self._raw["cjk"], "", WORD_START))
        chars = "".join(sorted(self._hanja)) or "\x00"
        self._re_hanja = re.compile(
            f"(?<![\u3040-\u30ff\u3400-\u9fff])[{re.escape(chars)}](?=[\\s·,…]|$)", re.MULTILINE
        )

    # ---------------------------------------------------------------- finding
    def scan(self, text: str) -> list[Hit]:
        """All actor names in `text`, longest first where they overlap, in text order."""
        found: list[tuple[int, int, _Alias]] = []
        low = lower_same_length(text)
        for m in self._re_ci.finditer(low):
            info = self._ci.get(normalize_alias(m.group()))
            if info is not None:
                found.append((m.start(), m.end(), info))
        for m in self._re_cs.finditer(text):
            info = self._cs.get(_SEP_STRIP.sub("", m.group()))
            if info is not None:
                found.append((m.start(), m.end(), info))
        if NON_LATIN.search(text):
            for m in self._re_cjk.finditer(low):
                info = self._cjk.get(normalize_alias(m.group()))
                if info is not None:
                    found.append((m.start(), m.end(), info))
            if _HANGUL.search(text):
                for m in self._re_hanja.finditer(text):
                    found.append(
                        (m.start(), m.end(), _Alias(self._hanja[m.group()], "name", False))
                    )
        if not found:
            return []
        found.sort(key=lambda t: (t[0], t[0] - t[1]))
        kept: list[tuple[int, int, _Alias]] = []
        last_end = -1
        for item in found:
            if item[0] >= last_end:
                kept.append(item)
                last_end = item[1]
        present: set[str] = set()
        for _s, _e, info in kept:
            if info.entry is not None and not info.weak:
                present.add(info.entry.key)
                if info.entry.country:
                    present.add(info.entry.country)
        hits: list[Hit] = []
        for s, e, info in kept:
            entry = info.entry
            if entry is None:
                continue
            if info.weak and entry.key not in present and not (entry.needs & present):
                continue
            hits.append(Hit(entry, info.role, s, e))
        return hits

    def find(self, text: str) -> list[Mention]:
        """Mentions of actors and countries, in text order."""
        return [hit.mention() for hit in self.scan(text)]

    def entry(self, key: str) -> Entry | None:
        return self._entries.get(key) or self._countries.get(key)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def expand_query(self, text: str) -> list[str]:
        """Other names (other languages, abbreviations) of every actor or country named in `text`.

        Lets a Korean question find English articles and the reverse: 한국 → South Korea, Korea...
        """
        hits = self.scan(text)
        typed = {normalize_alias(text[h.start : h.end]) for h in hits}
        seen: set[str] = set(typed)
        out: list[str] = []
        done: set[str] = set()
        for hit in hits:
            entry = hit.entry
            if entry.key in done:
                continue
            done.add(entry.key)
            names = entry.aliases()
            if entry.kind == "country":
                # Latin demonyms help search (Korean, French); 국내 "domestic" would not.
                names += [d for d in self._country_roles[entry.key]["demonyms"] if is_latin(d)]
            for name in names:
                norm = normalize_alias(name)
                if norm not in seen:
                    seen.add(norm)
                    out.append(name)
        return out

    # ---------------------------------------------------------------- countries
    def country_codes(self) -> list[str]:
        return sorted(self._countries)

    def country_name(self, code: str, lang: str = "en") -> str:
        entry = self._countries.get(code.strip().upper())
        if entry is None:
            return code
        for want in (lang, "en"):
            names = entry.names.get(want)
            if names:
                return names[0]
        return entry.key

    def country_code(self, name: str) -> str | None:
        """A user-typed country (code, name in any language, demonym or flag) as ISO code or EU."""
        text = name.strip().strip(".,;:!?\"'")
        if not text:
            return None
        from_flag = _flag_to_code(text)
        if from_flag is not None:
            return from_flag if from_flag in self._countries else None
        upper = text.upper()
        if upper == "UK":
            return "GB"
        if len(upper) == 2 and upper in self._countries:
            return upper
        for table, key in (
            (self._cs, _SEP_STRIP.sub("", text)),
            (self._ci, normalize_alias(text)),
            (self._cjk, normalize_alias(text)),
        ):
            info = table.get(key)
            if info is not None and info.entry is not None and info.role != "entity":
                return info.entry.key
        for hit in self.scan(text):
            if hit.role in ("name", "demonym") and (hit.end - hit.start) * 2 >= len(text):
                return hit.entry.key
        return None

    def suggest_country(self, name: str) -> str | None:
        """The known country name nearest to a misspelt one, or None if nothing is close."""
        text = name.strip()
        if not text:
            return None
        choices = [
            n
            for roles in self._country_roles.values()
            for role in ("names", "demonyms")
            for n in roles[role]
            if len(n) > 2
        ]
        best = process.extractOne(
            text, choices, scorer=fuzz.ratio, processor=str.lower, score_cutoff=70
        )
        return best[0] if best else None

    flag = staticmethod(flag)


def _lang_lists(value: Any) -> dict[str, list[str]]:
    """Accept {lang: [names]} or a bare list (taken as English)."""
    if isinstance(value, Mapping):
        return {str(k): [str(x) for x in v] for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {"en": [str(x) for x in value]}
    return {}
