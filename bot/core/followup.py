"""Turn a follow-up ("and Japan?", "그 평가 결과는?") into a full question using the last one.

Two kinds of follow-up: one that swaps the subject ("and Japan?", "what about LG?") asks the
previous question again about the new country or actor; one that asks something new about the
same subject ("그 평가 결과는?", "and the budget?") is read with the previous question's
subject words in front of it (without that question's own question words, so "언제" from the
last turn does not make this one a "when" question too).
"""

from __future__ import annotations

import re
from typing import Any

from bot.core.gazetteer import Gazetteer
from bot.core.models import Mention
from bot.core.question import KO_QUESTION, QUESTION_WORDS
from bot.core.textindex import STOPWORDS, words

_FOLLOWUP_EN = re.compile(
    r"(?i)^\s*(and|what about|how about|also|same for|and what about|what of|then)\b"
)
_FOLLOWUP_KO = re.compile(r"^\s*(그럼|그러면|그리고|그\s|그것|그거|그곳|이\s|저\s|거기|해당|또)")
_SHORT = 4
_TOKEN = re.compile(r"[^\W_]+(?:[.'’-][^\W_]+)*")
# Korean predicates that end a question (발표됐나요, 무엇인가요, 했습니까): not subject words.
_KO_PREDICATE = re.compile(r"(나요|까요|니까|인가|인지|는지|은지|가요|세요|래요|죠)$")


def resolve_followup(question: str, history: list[dict[str, Any]], gazetteer: Gazetteer) -> str:
    """The question, completed from the previous turn when it leans on it; else unchanged."""
    if not history:
        return question
    previous = str(history[-1].get("q", ""))
    if not previous:
        return question
    marked = bool(_FOLLOWUP_EN.match(question) or _FOLLOWUP_KO.match(question))
    content = _content_words(question)
    mentions = gazetteer.find(question)
    if not marked and len(content) > _SHORT:
        return question
    if mentions and len(content) - _mention_words(question, mentions) >= 3:
        return question  # it names its own subject and asks its own thing
    swapped = _swap_subject(previous, question, mentions, gazetteer)
    if swapped is not None:
        return swapped
    context = subject_words(previous)
    return f"{context} {question}".strip() if context else f"{previous} {question}"


def subject_words(question: str) -> str:
    """The question without its question words and closing predicate: what it is about."""
    kept: list[str] = []
    for m in _TOKEN.finditer(question):
        token = m.group()
        low = token.lower()
        if low in STOPWORDS or low in QUESTION_WORDS or KO_QUESTION.match(low):
            continue
        if _KO_PREDICATE.search(low) and not token.isascii():
            continue
        kept.append(token)
    return " ".join(kept)


def _content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and w not in QUESTION_WORDS]


def _mention_words(text: str, mentions: list[Mention]) -> int:
    return sum(len(words(text[m.start : m.end])) for m in mentions)


def _swap_subject(
    previous: str, question: str, new: list[Mention], gazetteer: Gazetteer
) -> str | None:
    """The previous question about the follow-up's country, or about its actors (each put in
    place of the previous actor of the same kind: a company for a company, a model for a model)."""
    if not new:
        return None
    old = gazetteer.find(previous)
    countries = sorted({m.key for m in new if m.kind == "country"})
    if countries:
        return _swap_country(previous, old, countries, gazetteer)
    by_kind: dict[str, list[str]] = {}
    for m in new:
        by_kind.setdefault(m.kind, []).append(question[m.start : m.end])
    keys = {m.key for m in new}
    spans = [m for m in old if m.kind in by_kind and m.key not in keys]
    if not spans:
        return None
    rewritten = previous
    for m in sorted(spans, key=lambda m: m.start, reverse=True):
        name = ", ".join(dict.fromkeys(by_kind[m.kind]))
        rewritten = rewritten[: m.start] + name + rewritten[m.end :]
    return rewritten


def _swap_country(
    previous: str, old: list[Mention], countries: list[str], gazetteer: Gazetteer
) -> str | None:
    """Replace the previous question's country, also where it is part of a longer name
    (한국 정부 -> 일본 정부)."""
    lang = "ko" if re.search(r"[\uac00-\ud7a3]", previous) else "en"
    name = ", ".join(gazetteer.country_name(c, lang) for c in countries)
    spans = [m for m in old if m.kind == "country" and m.key not in countries]
    if spans:
        rewritten = previous
        for m in sorted(spans, key=lambda m: m.start, reverse=True):
            rewritten = rewritten[: m.start] + name + rewritten[m.end :]
        return rewritten
    implied = {m.country for m in old if m.country and m.country not in countries}
    for code in sorted(implied):
        entry = gazetteer.entry(code)
        if entry is None:
            continue
        for alias in sorted(entry.aliases(), key=len, reverse=True):
            pattern = re.escape(alias) if not alias.isascii() else rf"\b{re.escape(alias)}\b"
            if re.search(pattern, previous):
                return re.sub(pattern, name, previous)
    return None
