"""Dates a report names in its own text, in English and Korean.

Feeds often carry no date, or the time an entry was last touched rather than when the event
happened; the text usually says ("on January 23, 2026", "2026년 1월 23일"). Story grouping uses
both: full dates as extra evidence of when the event happened, month-day tokens as features
that survive translation.
"""

from __future__ import annotations

import re
from datetime import date

_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: n for n, m in enumerate(_MONTH_NAMES, 1)}

_FULL_RES = (  # (pattern, order of the year, month, day groups)
    (re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+(20\d\d)\b", re.I), (3, 1, 2)),
    (re.compile(rf"\b{_DAY}\s+{_MONTH},?\s+(20\d\d)\b", re.I), (3, 2, 1)),
    (re.compile(r"(20\d\d)\s*년\s*(\d{1,2})\s*월\s*(\d{1,2})\s*일"), (1, 2, 3)),
    (re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)\b"), (1, 2, 3)),
)
_MONTH_DAY_RES = (  # (pattern, order of the month, day groups)
    (re.compile(rf"\b{_MONTH}\s+{_DAY}\b", re.I), (1, 2)),
    (re.compile(rf"\b{_DAY}\s+{_MONTH}", re.I), (2, 1)),
    (re.compile(r"(\d{1,2})\s*월\s*(\d{1,2})\s*일"), (1, 2)),
    (re.compile(r"\b20\d\d-(\d\d)-(\d\d)\b"), (1, 2)),
)


def _month(raw: str) -> int:
    return int(raw) if raw.isdigit() else _MONTHS[raw[:3].lower()]


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def full_dates(text: str) -> frozenset[date]:
    """Calendar dates written out with their year."""
    out: set[date] = set()
    for pattern, (y, m, d) in _FULL_RES:
        for match in pattern.finditer(text):
            found = _valid(int(match[y]), _month(match[m]), int(match[d]))
            if found is not None:
                out.add(found)
    return frozenset(out)


def month_day_tokens(text: str) -> frozenset[str]:
    """`dMMDD` for every month-and-day the text names, with or without a year."""
    out: set[str] = set()
    for pattern, (m, d) in _MONTH_DAY_RES:
        for match in pattern.finditer(text):
            found = _valid(2000, _month(match[m]), int(match[d]))  # 2000: leap, so Feb 29 is kept
            if found is not None:
                out.add(f"d{found.month:02d}{found.day:02d}")
    return frozenset(out)
