"""What a piece of text says, reduced to keys a question can be checked against in any language.

Both sides (stored articles and their sentences, and the question) go through the same code, so
"eliminated" meets 탈락, "50,000" meets 5만, "August" meets 8월, "second round" meets 2차,
and a named actor meets its name in the other script. Keys are plain strings with a prefix:
`w:` English stem, `k:` Korean word or stem, `c:` lexicon concept, `e:` gazetteer entity or
country, `n:` number, `y:` year, `m:` month, `o:` ordinal of a round or stage, `pl:` place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.gazetteer import Gazetteer, normalize_alias
from bot.core.lexicon import Lexicon, stem_en, stem_phrase
from bot.core.textindex import bigrams, korean_stems

_TOKEN = re.compile(r"[^\W_]+")
_RUNS = re.compile(r"[\uac00-\ud7a3]+|[^\uac00-\ud7a3]+")
_HANGUL_CHAR = re.compile(r"[\uac00-\ud7a3]")

MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_NAMES = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_DATE_EN = re.compile(
    rf"\b(?P<month>{_MONTH_NAMES})\b\.?"
    r"(?:\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b(?!\s*(?:%|percent|billion|million)))?"
    r"(?:,?\s+(?P<year>(?:19|20)\d\d)\b)?",
    re.IGNORECASE,
)
_DAY_BEFORE = re.compile(r"(?<!\d)\d{1,2}(?:st|nd|rd|th)?\s+$")
_DATE_KO = re.compile(
    r"(?:(?P<year>(?:19|20)\d\d)\s*년\s*)?(?<!\d)(?P<month>1[0-2]|0?[1-9])\s*월"
    r"(?:\s*(?P<day>[1-3]?\d)\s*일)?"
)
_FISCAL = re.compile(r"(?<!\d)((?:19|20)\d\d)[-–/](\d\d)(?![\d-])")
_YEAR = re.compile(r"(?<![\d.,])(19[89]\d|20[0-4]\d)(?!\d|[.,]\d)")
_MONEY = re.compile(
    r"[$€£¥₩₹]\s?\d|\d\s?(?:[천백]?\s?[조억만])?\s?(?:원|달러|유로|엔|파운드|위안)"
    r"|\d(?:[\d,.]*)\s?(?:trillion|billion|million|bn|m|k)?\s?"
    r"(?:euros?|dollars?|won|yen|pounds?|yuan|rupees?|francs?)\b",
    re.IGNORECASE,
)
_SCALE_EN = {
    "trillion": 1e12, "tn": 1e12, "billion": 1e9, "bn": 1e9, "b": 1e9,
    "million": 1e6, "m": 1e6, "thousand": 1e3, "k": 1e3,
}  # fmt: skip
_SCALE_KO = {"조": 1e12, "억": 1e8, "만": 1e4}
_SCALE_KO_SMALL = {"천": 1e3, "백": 1e2}
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    r"(?:\s?(천|백))?(?:\s?(조|억|만))?"
    r"(?:[\s-]?(trillion|billion|million|thousand|tn|bn|b|m|k)(?![a-z]))?",
    re.IGNORECASE,
)
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12, "hundred": 100,
}  # fmt: skip
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(NUMBER_WORDS) + r")\b")
_KO_NUMBERS = {"한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8,
               "아홉": 9, "열": 10}  # fmt: skip
_KO_NUMBER_WORD = re.compile(
    r"(?<![\uac00-\ud7a3])(다섯|여섯|일곱|여덟|아홉|한|두|세|네|열)\s?(?:팀|곳|개|명|장|건|차례|가지|종|기업|회사)"
)
_ORDINAL_WORDS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "final": 99,
}  # fmt: skip
_STAGE_EN = (
    r"(?:rounds?|stages?|phases?|reviews?|evaluations?|assessments?|cohorts?|batch|tranches?)"
)
_ORDINAL_EN = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|final|1st|2nd|3rd|4th|5th|6th)"
    rf"(?:[\s-]+\S+){{0,2}}?[\s-]+{_STAGE_EN}\b",
    re.IGNORECASE,
)
_STAGE_WORDS = frozenset(
    {"round", "rounds", "stage", "stages", "phase", "phases", "tranche", "tranches"}
)
_ORDINAL_EN_AFTER = re.compile(rf"\b{_STAGE_EN}\s+(\d|one|two|three|four|five)\b", re.IGNORECASE)
_ORDINAL_KO = re.compile(r"(?<!\d)(\d{1,2})\s*(?:차|단계|라운드|회차)(?!관|원)")
_ORDINAL_KO_WORD = re.compile(
    r"(첫|두|세|네|다섯)\s?번째\s?(?:단계|평가|라운드|관문)|최종\s?(?:단계|평가)"
)
_KO_ORD = {"첫": 1, "두": 2, "세": 3, "네": 4, "다섯": 5}
_REASON = re.compile(
    r"\b(because|due to|owing to|as a result|reason|in order to|so that|since|saying|"
    r"on the grounds|citing)\b|때문|위해|이유|판단|탓|설명|미달|못했|못한",
    re.IGNORECASE,
)
_CAPITAL = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
_NOT_NAMES = frozenset(
    {"the", "a", "an", "it", "its", "in", "on", "at", "of", "and", "but", "for", "to", "by",
     "this", "that", "these", "those", "he", "she", "they", "we", "i", "as", "after", "before",
     "with", "from", "under", "since", "while", "ai", "llm", "gpu", "gpus", "ceo", "cfo",
     *MONTHS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)  # fmt: skip


_TOKEN_CACHE = 50_000
_LETTER = re.compile(r"[^\W\d_]")


def fmt_number(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True)
class Found:
    """One typed item found in text: where, and the keys it adds."""

    start: int
    end: int
    kind: str  # number | year | month | ordinal
    keys: frozenset[str]
    label: str


def find_numbers(text: str) -> list[Found]:
    """Numbers with their scale: 5만 and 50,000 share `n:50000`, 2.6 billion is n:2.6e+09."""
    out: list[Found] = []
    for m in _NUMBER.finditer(text):
        digits, small, big, word = m.group(1), m.group(2), m.group(3), m.group(4)
        raw = float(digits.replace(",", ""))
        keys = {"n:" + fmt_number(raw)}
        scaled = raw
        if small:
            scaled *= _SCALE_KO_SMALL[small]
        if big:
            scaled *= _SCALE_KO[big]
        if word:
            scaled *= _SCALE_EN[word.lower()]
        if scaled != raw:
            keys.add("n:" + fmt_number(scaled))
        out.append(Found(m.start(), m.end(), "number", frozenset(keys), m.group(0)))
    return out


def find_dates(text: str, tokens: set[str] | None = None) -> list[Found]:
    """Years (y:), months (m:) and month-of-year (ym:) when a date names both: "February 20,
    2026" and 2026년 2월 are ym:2026-2, so "August 2026" is not met by August 2025.

    `tokens` (the text's lower-case words, when the caller has them) lets passes that cannot
    match be skipped."""
    out: list[Found] = []
    spans: list[tuple[int, int]] = []
    english = tokens is None or not tokens.isdisjoint(MONTHS)
    for m in _DATE_EN.finditer(text) if english else ():
        word = m.group("month")
        low = word.lower()
        if low in ("may", "mar", "jan") and not word[0].isupper():
            continue  # the verb, or a word
        month = MONTHS[low]
        start = m.start()
        day_first = _DAY_BEFORE.search(text, max(0, start - 4), start)
        if day_first:
            start = day_first.start()  # "2 September 2025": the 2 is a day, not a figure
        out.append(_month(start, m.end(), month, m.group("year"), text[start : m.end()]))
        spans.append((m.start(), m.end()))
    for m in _DATE_KO.finditer(text) if "월" in text else ():
        month = int(m.group("month"))
        out.append(_month(m.start(), m.end(), month, m.group("year"), m.group(0)))
        spans.append((m.start(), m.end()))
    for m in _FISCAL.finditer(text):
        out.append(Found(m.start(), m.end(), "year", frozenset({"y:" + m.group(1)}), m.group(0)))
        spans.append((m.start(), m.end()))
    for m in _YEAR.finditer(text):
        inside = any(s <= m.start() < e for s, e in spans)
        out.append(
            Found(
                m.start(),
                m.end(),
                "year" if not inside else "year-in-date",
                frozenset({"y:" + m.group(1)}),
                m.group(1),
            )
        )
    return out


def _month(start: int, end: int, month: int, year: str | None, label: str) -> Found:
    keys = {f"m:{month}"}
    if year:
        keys.add(f"ym:{year}-{month}")
    return Found(start, end, "month", frozenset(keys), label)


def find_ordinals(text: str, tokens: set[str] | None = None) -> list[Found]:
    """Rounds and stages: 2차, 2단계, second round, second-stage review, phase 2."""
    out: list[Found] = []
    english = tokens is None or not tokens.isdisjoint(_ORDINAL_WORDS)
    after = tokens is None or not tokens.isdisjoint(_STAGE_WORDS)
    korean = any(w in text for w in ("차", "단계", "라운드"))
    for m in _ORDINAL_EN.finditer(text) if english else ():
        n = _ORDINAL_WORDS[m.group(1).lower()]
        out.append(
            Found(
                m.start(), m.start() + len(m.group(1)), "ordinal", frozenset({f"o:{n}"}), m.group(0)
            )
        )
    for m in _ORDINAL_EN_AFTER.finditer(text) if after else ():
        token = m.group(1).lower()
        n = int(token) if token.isdigit() else NUMBER_WORDS[token]
        out.append(Found(m.start(), m.end(), "ordinal", frozenset({f"o:{n}"}), m.group(0)))
    for m in _ORDINAL_KO.finditer(text) if korean else ():
        n = int(m.group(1))
        out.append(Found(m.start(), m.end(), "ordinal", frozenset({f"o:{n}"}), m.group(0)))
    for m in _ORDINAL_KO_WORD.finditer(text) if korean or "번째" in text else ():
        n = _KO_ORD.get(m.group(1) or "", 99)
        out.append(Found(m.start(), m.end(), "ordinal", frozenset({f"o:{n}"}), m.group(0)))
    return out


@dataclass(frozen=True)
class TextFeatures:
    keys: frozenset[str]
    grams: frozenset[str]  # Hangul syllable pairs, for partial credit on long Korean words
    numbers: frozenset[str]
    dates: frozenset[str]
    places: frozenset[str]
    names: frozenset[str]
    reason: bool
    money: bool
    lang: str
    flat: str  # lower case, no spaces or hyphens: for names the gazetteer spells otherwise


def text_lang(text: str) -> str:
    """`ko` when at least 30% of the letters are Hangul (the bot's two reply languages)."""
    letters = len(_LETTER.findall(text))
    if not letters:
        return "en"
    return "ko" if len(_HANGUL_CHAR.findall(text)) / letters >= 0.3 else "en"


class Analyzer:
    """Turns text into TextFeatures with one gazetteer and one lexicon."""

    def __init__(self, gazetteer: Gazetteer, lexicon: Lexicon | None = None) -> None:
        self.gazetteer = gazetteer
        self.lexicon = lexicon or Lexicon.load()
        self._tokens: dict[str, tuple[frozenset[str], frozenset[str], str]] = {}
        self._place_keys = frozenset(
            "c:" + cid for cid, c in self.lexicon.concepts.items() if c.kind == "place"
        )

    def word_keys(self, token: str) -> tuple[set[str], set[str]]:
        """Keys and Hangul bigrams of one lower-cased token (Latin, Hangul or mixed)."""
        keys: set[str] = set()
        grams: set[str] = set()
        for run in _RUNS.findall(token):
            if _HANGUL_CHAR.match(run):
                keys.add("k:" + run)
                stems = korean_stems(run)
                keys.update("k:" + s for s in stems)
                keys.update("c:" + c for c in self.lexicon.korean(run))
                base = min([run, *stems], key=len)
                if len(base) >= 2:
                    grams.update(bigrams(base))
            elif run.isdigit():
                continue
            else:
                stem = stem_en(run)
                keys.add("w:" + stem)
                keys.update("c:" + c for c in self.lexicon.english(stem))
                if run in NUMBER_WORDS:
                    keys.add("n:" + fmt_number(NUMBER_WORDS[run]))
        return keys, grams

    def text_keys(self, token: str) -> tuple[frozenset[str], frozenset[str], str]:
        """As word_keys, plus the concepts a stored text implies (parameters give a size), and
        the English stem ("" for other tokens).

        Memoised: news vocabulary repeats, and this is most of the cost of reading a text."""
        cached = self._tokens.get(token)
        if cached is not None:
            return cached
        keys, grams = self.word_keys(token)
        concepts = {k[2:] for k in keys if k.startswith("c:")}
        keys.update("c:" + c for c in self.lexicon.broader(concepts))
        if len(self._tokens) >= _TOKEN_CACHE:
            self._tokens.clear()
        stem = stem_en(token) if token.isascii() and token.isalpha() else ""
        result = (frozenset(keys), frozenset(grams), stem)
        self._tokens[token] = result
        return result

    def place_key(self, surface: str) -> str:
        """One key for a place in any script, through the lexicon's place names when it can."""
        if _HANGUL_CHAR.search(surface):
            cids = self.lexicon.korean(surface.replace(" ", ""))
        else:
            stemmed = stem_phrase(surface)
            cids = self.lexicon.english(stemmed) | self.lexicon.english_phrases(stemmed)
        places = sorted(c for c in cids if self.lexicon.kind(c) == "place")
        return "c:" + places[0] if places else "pl:" + normalize_alias(surface)

    def features(
        self,
        text: str,
        *,
        entities: Iterable[str] = (),
        countries: Iterable[str] = (),
        light: bool = False,
    ) -> TextFeatures:
        """Everything a question can be checked against. `light` (a stored article, whose
        actors and countries were found at ingest and are passed in) skips the name scan and
        what only sentence picking needs (names, reasons, money, language)."""
        lowered = text.lower()
        tokens = _TOKEN.findall(lowered)
        parts = [self.text_keys(token) for token in tokens]
        keys: set[str] = set().union(*(p[0] for p in parts))
        grams: set[str] = set().union(*(p[1] for p in parts))
        phrase_concepts = self.lexicon.english_phrases(" ".join(p[2] for p in parts if p[2]))
        if max(lowered, default=" ") >= "\uac00":
            phrase_concepts |= self.lexicon.korean_phrases(lowered)
        keys.update("c:" + c for c in phrase_concepts)
        places = keys & self._place_keys
        names: set[str] = set()
        if not light:
            self._scan_names(text, keys, places, names)
        keys.update("e:" + e for e in entities)
        keys.update("e:" + c for c in countries)
        dates: set[str] = set()
        blocked: list[tuple[int, int]] = []
        seen = set(tokens)
        for found in (*find_dates(text, seen), *find_ordinals(text, seen)):
            blocked.append((found.start, found.end))
            if found.kind == "ordinal":
                keys |= found.keys
            else:
                dates |= found.keys
        numbers: set[str] = set()
        for found in find_numbers(text):
            if not any(s <= found.start < e for s, e in blocked):
                numbers |= found.keys
        if not seen.isdisjoint(NUMBER_WORDS):
            for m in _NUMBER_WORD.finditer(lowered):
                numbers.add("n:" + fmt_number(NUMBER_WORDS[m.group()]))
        for m in _KO_NUMBER_WORD.finditer(text):
            numbers.add("n:" + fmt_number(_KO_NUMBERS[m.group(1)]))
        keys |= numbers | dates
        if not light:
            for m in _CAPITAL.finditer(text):
                word = m.group()
                j = m.start() - 1
                while j >= 0 and text[j] in " \t":
                    j -= 1
                if j < 0 or text[j] in ".!?:\n":
                    continue  # a sentence starts here: capitals say nothing
                if word.lower() not in _NOT_NAMES:
                    names.add("w:" + stem_en(word))
        return TextFeatures(
            keys=frozenset(keys),
            grams=frozenset(grams),
            numbers=frozenset(numbers),
            dates=frozenset(dates),
            places=frozenset(places),
            names=frozenset(names),
            reason=not light and bool(_REASON.search(text)),
            money=not light and bool(_MONEY.search(text)),
            flat=normalize_alias(text),
            lang="" if light else text_lang(text),
        )

    def _scan_names(self, text: str, keys: set[str], places: set[str], names: set[str]) -> None:
        """Actors, countries and places the gazetteer finds in the text, into the sets."""
        for hit in self.gazetteer.scan(text):
            entry = hit.entry
            if hit.role == "place":
                place = self.place_key(text[hit.start : hit.end])
                places.add(place)
                keys.add(place)
                keys.add("e:" + entry.key)
            elif entry.kind == "country":
                keys.add("e:" + entry.key)
            else:
                keys.add("e:" + entry.key)
                names.add("e:" + entry.key)
