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

USAGE = "/subscribe [COUNTRY ...] [topic:TOPIC ...] [kw:WORD ...] [instant | digest[@HH:MM]]"


def _nearest_topic(word: str) -> str | None:
    found = process.extractOne(word.lower(), TOPICS, score_cutoff=60)
    return found[0] if found else None


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
    for token in tokens:
        low = token.lower()
        if low in ("all", "everything", "전체", "모두"):
            continue
        if low == "instant":
            mode = Mode.INSTANT
        elif low == "digest" or low.startswith("digest@"):
            mode = Mode.DIGEST
            if "@" in low:
                when = low.split("@", 1)[1]
                m = _TIME_RE.match(when)
                if not m:
                    raise UsageError(f"'{token}': the digest time must be HH:MM, e.g. digest@09:00")
                digest_time = f"{int(m.group(1)):02d}:{m.group(2)}"
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
    return SubscriptionSpec(
        countries=tuple(countries),
        topics=tuple(topics),
        keywords=tuple(keywords),
        excluded=tuple(excluded),
        mode=mode,
        digest_time=digest_time,
    )


def describe(spec: SubscriptionSpec, gazetteer: Gazetteer) -> str:
    """One readable line: `🇰🇷 South Korea · topics: compute · keywords: HyperCLOVA · instant`."""
    parts: list[str] = []
    if spec.countries:
        parts.append(
            ", ".join(f"{flag(c)} {gazetteer.country_name(c)}" for c in spec.countries)
        )
    else:
        parts.append("all countries")
    if spec.topics:
        parts.append("topics: " + ", ".join(spec.topics))
    if spec.keywords:
        parts.append("keywords: " + ", ".join(spec.keywords))
    if spec.excluded:
        parts.append("excluding: " + ", ".join(spec.excluded))
    parts.append(f"digest at {spec.digest_time}" if spec.mode is Mode.DIGEST else "instant")
    return " · ".join(parts)
