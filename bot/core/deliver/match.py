"""New story x subscriptions -> outbox rows, one per (story, target), keyed for idempotency."""

from __future__ import annotations

import gc
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

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


class _Entry:
    __slots__ = ("excluded", "keywords", "sub", "target_id", "topics")

    def __init__(self, target_id: int, sub: Subscription) -> None:
        self.target_id = target_id
        self.sub = sub
        self.topics = frozenset(sub.spec.topics)
        self.keywords = sub.spec.keywords
        self.excluded = sub.spec.excluded

    def passes(self, topics: Sequence[str], text: str) -> bool:
        if self.topics and self.topics.isdisjoint(topics):
            return False
        if self.keywords and not any(keyword_in(k, text) for k in self.keywords):
            return False
        return not any(keyword_in(k, text) for k in self.excluded)


class _Index:
    """Instant subscriptions arranged so one story meets only those that could want it.

    Keyed by country (or `*` for subscriptions without one): those with no further filter
    match outright, those with topics are looked up by (country, topic), and only those with
    keywords are checked one by one against the text.
    """

    ANY = "*"

    def __init__(self, active: Sequence[tuple[int, Subscription]]) -> None:
        self.plain: dict[str, dict[int, Subscription]] = defaultdict(dict)
        self.by_topic: dict[tuple[str, str], dict[int, Subscription]] = defaultdict(dict)
        self.checked: dict[str, list[_Entry]] = defaultdict(list)
        for target_id, sub in sorted(active, key=lambda pair: pair[1].id):
            spec = sub.spec
            if spec.mode is not Mode.INSTANT:
                continue
            for scope in dict.fromkeys(spec.countries or (self.ANY,)):
                if spec.keywords or spec.excluded:
                    self.checked[scope].append(_Entry(target_id, sub))
                elif spec.topics:
                    for topic in spec.topics:
                        self.by_topic[(scope, topic)].setdefault(target_id, sub)
                else:
                    self.plain[scope].setdefault(target_id, sub)

    def matches(
        self, countries: Sequence[str], topics: Sequence[str], text: str
    ) -> dict[int, Subscription]:
        """A matching subscription for each target that wants the story."""
        scopes = [*dict.fromkeys(countries), self.ANY]
        found: dict[int, Subscription] = {}
        for scope in scopes:
            outright = self.plain.get(scope)
            if outright:
                found.update(outright)
            for topic in topics:
                by_topic = self.by_topic.get((scope, topic))
                if by_topic:
                    found.update(by_topic)
        for scope in scopes:
            for entry in self.checked.get(scope, ()):
                if entry.target_id not in found and entry.passes(topics, text):
                    found[entry.target_id] = entry.sub
        return found


def _quick_row(
    key: str, story_id: str, target_id: int, sub_id: int, nonce: str, payload: dict[str, Any]
) -> OutboxRow:
    """An OutboxRow without the frozen dataclass's field-by-field __init__ (the same object
    as OutboxRow(...) would give, at half the cost; it dominates a fan-out to 10,000s)."""
    row: OutboxRow = object.__new__(OutboxRow)
    row.__dict__.update(
        dedupe_key=key,
        kind="alert",
        story_id=story_id,
        target_id=target_id,
        subscription_id=sub_id,
        nonce=nonce,
        payload=payload,
        next_attempt_at=0.0,
        id=None,
        state="pending",
    )
    return row


def alert_rows(story_id: str, article_id: str, found: dict[int, Subscription]) -> list[OutboxRow]:
    """One outbox row per target (keys as `dedupe_key` makes them). Nonces are a random prefix
    per story plus a counter: unique (Discord takes up to 25 characters) without a uuid per row."""
    prefix = uuid.uuid4().hex[:13]
    payload = {"article_id": article_id}  # read-only, shared by the story's rows
    paused = gc.isenabled()
    gc.disable()  # many small objects at once: no collection passes over the whole heap
    try:
        return [
            _quick_row(f"alert:{story_id}:{tid}", story_id, tid, sub.id, f"{prefix}{n:x}", payload)
            for n, (tid, sub) in enumerate(found.items())
        ]
    finally:
        if paused:
            gc.enable()


def make_matcher(
    active: Callable[[], list[tuple[int, Subscription]]],
    version: Callable[[], int] | None = None,
) -> Callable[[StoryCandidate, NewArticle, bool], list[OutboxRow]]:
    """A matcher over the active subscriptions.

    With `version` (a counter the store bumps whenever subscriptions or targets change) the
    subscriptions are read and indexed once and reused until it changes; without it they are
    read fresh for each item.
    """
    cached: list[Any] = [None, None]  # [version, index]

    def index() -> _Index:
        if version is None:
            return _Index(active())
        now = version()
        if cached[1] is None or cached[0] != now:
            cached[0], cached[1] = now, _Index(active())
        built: _Index = cached[1]
        return built

    def match(story: StoryCandidate, article: NewArticle, new_story: bool) -> list[OutboxRow]:
        if not new_story:
            return []
        text = f"{article.title}\n{article.summary}"
        found = index().matches(story.countries, story.topics, text)
        return alert_rows(story.id, article.id, found)

    return match
