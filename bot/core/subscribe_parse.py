"""Parse `/subscribe` arguments into a SubscriptionSpec, with messages a user can act on."""

from __future__ import annotations

import re
import shlex

from rapidfuzz import process

from bot.core.errors import UsageError
from bot.core.gazetteer import Gazetteer, flag
from bot.core.models import TOPICS, Mode, SubscriptionSpec

MAX_KEYWORDS = 50
MAX_KEYWORD_LEN = 100
MAX_ARGS_CHARS = 2_000
_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

USAGE = (
    "/subscribe [COUNTRY ...] [topic:TOPIC ...] [kw:WORD ...] "
    "[instant | digest[@HH:MM] | weekly[@DAY][@HH:MM]] [quiet@HH:MM-HH:MM]"
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _nearest_topic(word: str) -> str | None:
    found = process.extractOne(word.lower(), TOPICS, score_cutoff=60)
    return found[0] if found else None


def _hhmm(text: str, token: str, example: str) -> str:
    m = _TIME_RE.match(text)
    if not m:
        raise UsageError(f"'{token}': times are HH:MM (24-hour), e.g. {example}")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _weekly(token: str) -> tuple[int, str]:
    """`weekly`, `weekly@fri`, `weekly@08:00`, `weekly@fri@08:00`: (weekday, time)."""
    day, when = 0, "09:00"
    for part in token.lower().split("@")[1:]:
        if _TIME_RE.match(part):
            when = _hhmm(part, token, "weekly@mon@09:00")
        elif part[:3] in WEEKDAYS and DAY_NAMES[WEEKDAYS.index(part[:3])].lower().startswith(part):
            day = WEEKDAYS.index(part[:3])
        else:
            raise UsageError(
                f"'{token}': a weekly digest is weekly[@DAY][@HH:MM], DAY one of "
                f"{', '.join(WEEKDAYS)}, e.g. weekly@fri@17:00"
            )
    return day, when


def _quiet(token: str) -> tuple[str, str]:
    start, sep, end = token.split("@", 1)[1].partition("-")
    if not sep:
        raise UsageError(f"'{token}': quiet hours are quiet@HH:MM-HH:MM, e.g. quiet@22:00-07:00")
    first, last = (_hhmm(t, token, "quiet@22:00-07:00") for t in (start, end))
    if first == last:
        raise UsageError(f"'{token}': quiet hours must start and end at different times")
    return first, last


def parse_subscribe(args: str, gazetteer: Gazetteer) -> SubscriptionSpec:
    """Turn `KR JP topic:compute kw:HyperCLOVA digest@09:00` into a spec, or raise UsageError."""
    if len(args) > MAX_ARGS_CHARS:
        raise UsageError(
            f"that is too long ({len(args)} characters); keep it under "
            f"{MAX_ARGS_CHARS}. Usage: {USAGE}"
        )
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    countries: list[str] = []
    topics: list[str] = []
    keywords: list[str] = []
    excluded: list[str] = []
    mode = Mode.INSTANT
    digest_time = "09:00"
    digest_day: int | None = None
    quiet: tuple[str, str] | None = None
    for token in tokens:
        low = token.lower()
        if low in ("all", "everything", "전체", "모두"):
            continue
        if low == "instant":
            mode, digest_day = Mode.INSTANT, None
        elif low == "digest" or low.startswith("digest@"):
            mode, digest_day = Mode.DIGEST, None
            if "@" in low:
                when = low.split("@", 1)[1]
                m = _TIME_RE.match(when)
                if not m:
                    raise UsageError(f"'{token}': the digest time must be HH:MM, e.g. digest@09:00")
                digest_time = f"{int(m.group(1)):02d}:{m.group(2)}"
        elif low == "weekly" or low.startswith("weekly@"):
            mode = Mode.DIGEST
            digest_day, digest_time = _weekly(token)
        elif low.startswith("quiet@"):
            quiet = _quiet(token)
        elif low.startswith(("topic:", "topics:", "주제:")):
            for value in filter(None, re.split(r"[,\s]+", token.split(":", 1)[1].lower())):
                if value not in TOPICS:
                    near = _nearest_topic(value)
                    hint = f" Did you mean topic:{near}?" if near else ""
                    raise UsageError(f"unknown topic '{value}'.{hint} Topics: {', '.join(TOPICS)}")
                if value not in topics:
                    topics.append(value)
        elif low.startswith(("kw:", "keyword:", "키워드:")) or token.startswith("-"):
            negative = token.startswith("-")
            value = token[1:] if negative else token.split(":", 1)[1]
            if value.startswith("-"):
                negative, value = True, value[1:]
            value = " ".join(value.split())
            if not value:
                raise UsageError(f"'{token}': give a word after kw:, e.g. kw:HyperCLOVA")
            if len(value) > MAX_KEYWORD_LEN:
                raise UsageError(f"a keyword may have at most {MAX_KEYWORD_LEN} characters")
            (excluded if negative else keywords).append(value)
            if len(keywords) + len(excluded) > MAX_KEYWORDS:
                raise UsageError(f"at most {MAX_KEYWORDS} keywords per subscription")
        else:
            code = gazetteer.country_code(token)
            if code is None:
                near = gazetteer.suggest_country(token)
                hint = f" Did you mean {near}?" if near else ""
                raise UsageError(
                    f"unknown country '{token}'.{hint} Use a code such as KR, a name such as "
                    f"Japan or 한국, topic:NAME or kw:WORD. Usage: {USAGE}"
                )
            if code not in countries:
                countries.append(code)
    if quiet is not None and mode is Mode.DIGEST:
        raise UsageError(
            "quiet hours hold instant alerts; a digest already comes at its own time. "
            "Use one or the other."
        )
    return SubscriptionSpec(
        countries=tuple(countries),
        topics=tuple(topics),
        keywords=tuple(keywords),
        excluded=tuple(excluded),
        mode=mode,
        digest_time=digest_time,
        digest_day=digest_day,
        quiet_start=quiet[0] if quiet else None,
        quiet_end=quiet[1] if quiet else None,
    )


def describe(spec: SubscriptionSpec, gazetteer: Gazetteer) -> str:
    """One readable line: `🇰🇷 South Korea · topics: compute · keywords: HyperCLOVA · instant`."""
    parts: list[str] = []
    if spec.countries:
        parts.append(", ".join(f"{flag(c)} {gazetteer.country_name(c)}" for c in spec.countries))
    else:
        parts.append("all countries")
    if spec.topics:
        parts.append("topics: " + ", ".join(spec.topics))
    if spec.keywords:
        parts.append("keywords: " + ", ".join(spec.keywords))
    if spec.excluded:
        parts.append("excluding: " + ", ".join(spec.excluded))
    if spec.mode is not Mode.DIGEST:
        parts.append("instant")
    elif spec.digest_day is not None and 0 <= spec.digest_day < len(DAY_NAMES):
        parts.append(f"weekly digest on {DAY_NAMES[spec.digest_day]} at {spec.digest_time}")
    else:
        parts.append(f"digest at {spec.digest_time}")
    if spec.quiet_start and spec.quiet_end:
        parts.append(f"quiet {spec.quiet_start}–{spec.quiet_end}")
    return " · ".join(parts)
