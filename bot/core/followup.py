"""Turn a follow-up ("and Japan?", "그 평가 결과는?") into a full question using the last one."""

from __future__ import annotations

import re
from typing import Any

from bot.core.gazetteer import Gazetteer
from bot.core.textindex import words

_FOLLOWUP_EN = re.compile(r"(?i)^\s*(and|what about|how about|also|same for|and what about)\b")
_FOLLOWUP_KO = re.compile(r"^\s*(그럼|그러면|그리고|그\s|그것|그거|이\s|저\s|거기|해당)")
_SHORT = 4


def resolve_followup(question: str, history: list[dict[str, Any]], gazetteer: Gazetteer) -> str:
    """The question, completed from the previous turn when it leans on it; else unchanged."""
    if not history:
        return question
    previous = str(history[-1].get("q", ""))
    if not previous:
        return question
    is_followup = bool(_FOLLOWUP_EN.match(question) or _FOLLOWUP_KO.match(question))
    if not is_followup and len(words(question)) > _SHORT:
        return question
    new_countries = {m.country for m in gazetteer.find(question) if m.kind == "country"}
    if new_countries:
        # "and Japan?": ask the previous question again about the new country.
        spans = sorted(
            (m for m in gazetteer.find(previous) if m.kind == "country"),
            key=lambda m: m.start,
            reverse=True,
        )
        if spans:
            new_name = ", ".join(
                gazetteer.country_name(c) for c in sorted(c for c in new_countries if c)
            )
            rewritten = previous
            for m in spans:
                rewritten = rewritten[: m.start] + new_name + rewritten[m.end :]
            return rewritten
    return f"{previous} {question}"
