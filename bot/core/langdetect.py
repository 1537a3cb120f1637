"""Language of a title or summary: script shortcuts first, py3langid for Latin and Cyrillic.

Scripts that belong to one language of interest (Hangul, kana, Arabic, ...) decide at once;
that is both faster and more reliable on short headlines than n-gram statistics. The
py3langid model (about 0.7 s to load) is loaded on first use only.
"""

from __future__ import annotations

import re
import threading
from typing import Any

# Languages the bot's sources are written in; a small set keeps py3langid from guessing
# an exotic neighbour (e.g. Galician for Spanish) on a short headline.
LANGUAGES: tuple[str, ...] = (
    "en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "ro",
    "hu", "el", "tr", "ru", "uk", "id", "ms", "vi", "ja", "zh", "ko", "ar", "fa", "he",
    "hi", "th",
)  # fmt: skip
DEFAULT = "en"
# Fewer letters than this tell n-gram statistics nothing reliable.
_MIN_LETTERS = 12
# Only this much text is examined: a headline plus a sentence or two is enough.
_SAMPLE = 240

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_HEBREW = re.compile(r"[\u0590-\u05ff]")
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_GREEK = re.compile(r"[\u0370-\u03ff]")
_LETTER = re.compile(r"[^\W\d_]")
# Anything outside Latin letters, ASCII and typographic punctuation (curly quotes, dashes).
_NON_LATIN = re.compile(r"[^\x00-\u024f\u2000-\u206f\u20ac]")
_ASCII_WORD = re.compile(r"[a-z]+")
# Function words common in English and absent (as words) from the other Latin-script
# languages above: two of them in Latin-script text settle it without the model.
_ENGLISH_MARKERS = frozenset(
    {"the", "and", "with", "that", "from", "this", "which", "have", "has", "are", "its",
     "their", "been", "into", "about", "after", "says", "said", "new", "would", "could",
     "should", "what", "when", "they", "you", "your", "our", "were", "than", "how", "why"}
)  # fmt: skip

_identifier: Any = None
_lock = threading.Lock()


def _model() -> Any:
    """The py3langid identifier, built once and restricted to LANGUAGES."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE)
                ident.set_languages([code for code in LANGUAGES if code in ident.labels])
                _identifier = ident
    return _identifier


def _by_script(text: str, letters: int) -> str | None:
    """A language decided by its writing system alone, or None when the script is shared."""
    hangul = len(_HANGUL.findall(text))
    if hangul and hangul * 5 >= letters:
        return "ko"
    kana = len(_KANA.findall(text))
    if kana >= 2 or (kana and kana * 10 >= letters):
        return "ja"
    han = len(_HAN.findall(text))
    if han and han * 3 >= letters:
        return "zh"
    for pattern, code in (
        (_ARABIC, "ar"),
        (_HEBREW, "he"),
        (_DEVANAGARI, "hi"),
        (_THAI, "th"),
        (_GREEK, "el"),
    ):
        found = len(pattern.findall(text))
        if found and found * 3 >= letters:
            return code
    return None


def _looks_english(sample: str) -> bool:
    words = _ASCII_WORD.findall(sample.lower())
    hits = sum(1 for word in words if word in _ENGLISH_MARKERS)
    return hits >= 2 and hits * 20 >= len(words)


def detect_language(text: str) -> str:
    """ISO 639-1 code of `text`; "en" when it is too short to tell."""
    sample = text[:_SAMPLE]
    if not _NON_LATIN.search(sample):
        if len(sample) < 64 and len(_LETTER.findall(sample)) < _MIN_LETTERS:
            return DEFAULT
        if _looks_english(sample):
            return "en"
    else:
        letters = len(_LETTER.findall(sample))
        if not letters:
            return DEFAULT
        scripted = _by_script(sample, letters)
        if scripted:
            return scripted
        if letters < _MIN_LETTERS:
            return DEFAULT
    code, _score = _model().classify(sample)
    return str(code)
