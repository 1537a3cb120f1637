"""New story x subscriptions -> outbox rows, one per (story, target), keyed for idempotency."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from functools import lru_cache

from bot.core.models import Mode, Subscription, SubscriptionSpec
from bot.core.ports import NewArticle, OutboxRow, StoryCandidate


@lru_cache(maxsize=4096)
def _keyword_re(keyword: str) -> re.Pattern[str]:
    # Whole words for scripts with spaces; Hangul/CJK keywords match inside words, since
    # Korean attaches particles (네이버가) and Japanese/Chinese have no spaces at all.
    escaped = r"\s+".join(re.escape(part) for part in keyword.split())
    if re.search(r"[\u3040-\u30FF\u4E00-\u9FFF\uAC00-\uD7A3]", keyword):
        return re.compile(escaped, re.IGNORECASE)
    return re.compile(rf"(?<![^\W_]){escaped}(?![^\W_])", re.IGNORECASE)


def keyword_in(keyword: str, text: str) -> bool:
    return _keyword_re(keyword).search(text) is not None


def spec_matches(
    spec: SubscriptionSpec, countries: Sequence[str], topics: Sequence[str], text: str
) -> bool:
    """True when a story passes every filter of the subscription."""
    if spec.countries and not set(spec.countries) & set(countries):
        return False
    if spec.topics and not set(spec.topics) & set(topics):
        return False
    if spec.keywords and not any(keyword_in(k, text) for k in spec.keywords):
        return False
    return not any(keyword_in(k, text) for k in spec.excluded)


def dedupe_key(story_id: str, target_id: int) -> str:
    return f"alert:{story_id}:{target_id}"


def make_matcher(
    active: Callable[[], list[tuple[int, Subscription]]],
) -> Callable[[StoryCandidate, NewArticle, bool], list[OutboxRow]]:
    """A matcher over the currently active subscriptions (read fresh for each batch item)."""

    def match(story: StoryCandidate, article: NewArticle, new_story: bool) -> list[OutboxRow]:
        if not new_story:
            return []
        text = f"{article.title}\n{article.summary}"
        rows: dict[int, OutboxRow] = {}
        for target_id, sub in active():
            spec = sub.spec
            if spec.mode is not Mode.INSTANT or target_id in rows:
                continue
            if spec_matches(spec, story.countries, story.topics, text):
                rows[target_id] = OutboxRow(
                    dedupe_key=dedupe_key(story.id, target_id),
                    kind="alert",
                    story_id=story.id,
                    target_id=target_id,
                    subscription_id=sub.id,
                    nonce=uuid.uuid4().hex[:25],
                    payload={"article_id": article.id},
                )
        return list(rows.values())

    return match
