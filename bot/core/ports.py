"""What the core needs from the outside world, as Protocols; storage and adapters implement them.

The core depends only on these shapes, so it never imports `storage`, `discord` or `telegram`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.core.models import (
    AlertMessage,
    Article,
    Reply,
    SendResult,
    Story,
    Subscription,
    SubscriptionSpec,
    Target,
)


@dataclass(frozen=True)
class SourceRow:
    id: int
    url: str
    name: str | None
    kind: str
    enabled: bool
    etag: str | None
    last_modified: str | None
    last_status: str | None
    last_error: str | None
    error_count: int
    consecutive_failures: int
    next_poll_at: float
    last_polled_at: str | None
    last_success_at: str | None


@dataclass(frozen=True)
class NewArticle:
    """An article ready to store, with its story already decided."""

    id: str
    url: str
    guid: str | None
    source_id: int | None
    source: str
    kind: str
    title: str
    summary: str
    published: datetime | None
    fetched_at: datetime
    lang: str
    relevant: bool
    score: float
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    entities: tuple[str, ...]
    story_id: str
    terms: str


@dataclass(frozen=True)
class StoryCandidate:
    """A story as the grouper sees it (its fingerprint included)."""

    id: str
    title: str
    url: str
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    entities: tuple[str, ...]
    signature: str
    relevant: bool
    first_seen: datetime
    last_seen: datetime
    event_at: datetime | None
    article_count: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class OutboxRow:
    dedupe_key: str
    kind: str
    story_id: str | None
    target_id: int
    subscription_id: int | None
    nonce: str
    payload: dict[str, Any] = field(default_factory=dict)
    next_attempt_at: float = 0.0
    id: int | None = None
    state: str = "pending"


@dataclass(frozen=True)
class SearchHit:
    article: Article
    score: float


class SourceRepo(Protocol):
    def ensure(self, url: str, *, name: str | None = None, kind: str = "feed") -> int: ...
    def add_feed(self, url: str) -> bool: ...
    def remove(self, url: str) -> bool: ...
    def get(self, url: str) -> SourceRow | None: ...
    def all(self, kind: str | None = "feed") -> list[SourceRow]: ...
    def due(self, now: float) -> list[SourceRow]: ...
    def record_success(
        self,
        source_id: int,
        *,
        status: str,
        etag: str | None,
        last_modified: str | None,
        next_poll_at: float,
        name: str | None = None,
        warning: str | None = None,
    ) -> None: ...
    def record_failure(
        self, source_id: int, *, status: str, error: str, next_poll_at: float, disable: bool
    ) -> None: ...


class ArticleRepo(Protocol):
    def known_urls(self, urls: Iterable[str]) -> set[str]: ...
    def known_guids(self, source_id: int | None, guids: Iterable[str]) -> set[str]: ...
    def count(self, *, kind: str | None = None) -> int: ...
    def save(
        self,
        articles: Sequence[NewArticle],
        stories: Sequence[StoryCandidate],
        outbox: Sequence[OutboxRow] = (),
    ) -> None: ...
    def recent_stories(self, since: datetime, limit: int = 20_000) -> list[StoryCandidate]: ...
    def story(self, story_id: str) -> Story | None: ...
    def articles_of_story(self, story_id: str) -> list[Article]: ...
    def by_url(self, url: str) -> Article | None: ...
    def by_ids(self, ids: Sequence[str]) -> list[Article]: ...
    def search(self, match: str, *, limit: int = 50, min_seq: int = 0) -> list[SearchHit]: ...
    def seq_since(self, when: datetime) -> int: ...
    def max_seq(self) -> int: ...
    def latest(
        self, *, country: str | None = None, topic: str | None = None, limit: int = 5
    ) -> list[Article]: ...
    def export(self, since: datetime | None = None, kind: str = "feed") -> Iterator[Article]: ...


class SubscriptionRepo(Protocol):
    def add(self, target: Target, spec: SubscriptionSpec) -> Subscription: ...
    def count_for(self, target: Target) -> int: ...
    def for_target(self, target: Target) -> list[Subscription]: ...
    def all(self) -> list[Subscription]: ...
    def active(self) -> list[tuple[int, Subscription]]: ...
    def remove(self, target: Target, subscription_id: int | None) -> int: ...
    def target_id(self, target: Target, *, create: bool = True) -> int | None: ...
    def set_paused(self, target: Target, paused: bool, reason: str | None = None) -> None: ...


class OutboxRepo(Protocol):
    def depth(self) -> int: ...
    def pending_for_target(self, target: Target) -> list[OutboxRow]: ...
    def mark_sent(self, ids: Iterable[int]) -> None: ...


class ConversationRepo(Protocol):
    def get(self, key: str, max_age_s: float) -> list[dict[str, Any]]: ...
    def put(self, key: str, history: list[dict[str, Any]]) -> None: ...


class MetaRepo(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...


class StorePort(Protocol):
    """Everything the core reads and writes, as one handle."""

    @property
    def sources(self) -> SourceRepo: ...
    @property
    def articles(self) -> ArticleRepo: ...
    @property
    def subscriptions(self) -> SubscriptionRepo: ...
    @property
    def outbox(self) -> OutboxRepo: ...
    @property
    def conversations(self) -> ConversationRepo: ...
    @property
    def meta(self) -> MetaRepo: ...


class Sender(Protocol):
    """An adapter's outbound side: deliver a rendered reply to a target."""

    platform: str

    async def send(self, target: Target, reply: Reply, *, nonce: str) -> str: ...


class AlertSender(Protocol):
    """A platform's outbound side for the delivery worker.

    Implementations raise the DeliveryError family (RateLimited, TransientDeliveryError,
    PermanentDeliveryError, TargetMigrated) and never sleep on a 429 themselves: the worker
    owns every wait, so one slow chat never holds up the others.
    """

    platform: str

    async def send_alert(
        self, target: Target, alert: AlertMessage, *, nonce: str
    ) -> SendResult: ...

    async def edit_alert(self, target: Target, message_id: str, alert: AlertMessage) -> None: ...

    async def send_text(self, target: Target, reply: Reply, *, nonce: str) -> SendResult: ...
