"""Conversions between SQLite rows and core models (JSON lists, ISO dates)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.core.models import Article, Mode, Story, Subscription, SubscriptionSpec, Target


def dumps(values: Any) -> str:
    return json.dumps(
        list(values) if isinstance(values, tuple | set) else values, ensure_ascii=False
    )


def loads_tuple(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_article(row: dict[str, Any]) -> Article:
    return Article(
        id=row["id"],
        url=row["url"],
        title=row["title"],
        summary=row["summary"],
        published=parse_iso(row["published"]),
        source=row["source"],
        lang=row["lang"],
        relevant=bool(row["relevant"]),
        countries=loads_tuple(row["countries"]),
        topics=loads_tuple(row["topics"]),
        story_id=row["story_id"],
        fetched_at=parse_iso(row["fetched_at"]),
        kind=row["kind"],
        entities=loads_tuple(row.get("entities")),
    )


def to_story(row: dict[str, Any]) -> Story:
    first = parse_iso(row["first_seen"]) or datetime.now(UTC)
    return Story(
        id=row["id"],
        title=row["title"],
        url=row["url"],
        countries=loads_tuple(row["countries"]),
        topics=loads_tuple(row["topics"]),
        first_seen=first,
        last_seen=parse_iso(row["last_seen"]) or first,
        article_count=row["article_count"],
        sources=loads_tuple(row["sources"]),
    )


def to_target(row: dict[str, Any]) -> Target:
    return Target(platform=row["platform"], chat_id=row["chat_id"], thread_id=row["thread_id"])


def to_subscription(row: dict[str, Any], target: Target) -> Subscription:
    spec = SubscriptionSpec(
        countries=loads_tuple(row["countries"]),
        topics=loads_tuple(row["topics"]),
        keywords=loads_tuple(row["keywords"]),
        excluded=loads_tuple(row["excluded"]),
        mode=Mode(row["mode"]),
        digest_time=row["digest_time"],
        digest_day=row.get("digest_day"),
        quiet_start=row.get("quiet_start"),
        quiet_end=row.get("quiet_end"),
    )
    return Subscription(
        id=row["id"],
        target=target,
        spec=spec,
        paused=bool(row.get("paused", 0)),
        paused_reason=row.get("paused_reason"),
        created_at=parse_iso(row["created_at"]),
    )
