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
class DeliveryRow:
    """An outbox row claimed for sending, with where it goes."""

    id: int
    dedupe_key: str
    kind: str
    story_id: str | None
    target_id: int
    target: Target
    chat_type: str | None
    nonce: str
    payload: dict[str, Any]
    attempts: int = 0
    uncertain: bool = False
    tz: str = "UTC"
    quiet_start: str | None = None  # the quiet hours of the subscription it matched
    quiet_end: str | None = None


@dataclass(frozen=True)
class EditRow:
    """A sent alert whose story has gained outlets since: edit it to name them."""

    id: int
    target_id: int
    target: Target
    chat_type: str | None
    story_id: str
    message_id: str
    payload: dict[str, Any]
    outlets: int


@dataclass(frozen=True)
class StoryText:
    """A relevant story with the text filters need and the facts digests show."""

    id: str
    title: str
    url: str
    summary: str
    outlet: str
    published: datetime | None
    first_seen: datetime
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    article_count: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class DigestSub:
    """A digest-mode subscription with its target's time zone and when it last went out."""

    subscription_id: int
    target_id: int
    target: Target
    tz: str
    spec: SubscriptionSpec
    created_at: datetime | None
    last_digest_at: datetime | None


@dataclass(frozen=True)
class RecoveryCounts:
    """What start-up found left behind by a stopped or crashed worker."""

    released: int = 0
    resent: int = 0
    uncertain: int = 0
    failed: int = 0


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
    def version(self) -> int: ...
    def pause_target(self, target_id: int, reason: str) -> None: ...
    def migrate_target(self, target_id: int, new_chat_id: str) -> int: ...
    def set_chat_type(self, target: Target, chat_type: str) -> None: ...
    def digest_subscriptions(self) -> list[DigestSub]: ...


class OutboxRepo(Protocol):
    def depth(self) -> int: ...
    def pending_for_target(self, target: Target) -> list[OutboxRow]: ...
    def mark_sent(self, ids: Iterable[int]) -> None: ...
    def enqueue(self, rows: Sequence[OutboxRow]) -> int: ...
    def claim_due(self, now: float, platforms: Sequence[str], limit: int) -> list[DeliveryRow]: ...
    def next_due(self, platforms: Sequence[str]) -> float | None: ...
    def mark_in_flight(self, row_id: int, now: float) -> None: ...
    def settle_sent(
        self, row_id: int, message_id: str | None, now: float, shown_count: int = 0
    ) -> None: ...
    def settle_retry(
        self,
        row_id: int,
        next_attempt_at: float,
        error: str,
        *,
        state: str = "pending",
        count_attempt: bool = False,
        uncertain: bool = False,
    ) -> None: ...
    def settle_failed(self, row_id: int, reason: str, *, uncertain: bool = False) -> None: ...
    def save_progress(self, row_id: int, payload: dict[str, Any]) -> None: ...
    def release(self, row_ids: Iterable[int]) -> None: ...
    def defer(self, due: Sequence[tuple[int, float]], reason: str) -> None: ...
    def by_message(self, target: Target, message_id: str) -> OutboxRow | None: ...
    def recover(self, idempotent_platforms: Iterable[str]) -> RecoveryCounts: ...
    def fail_pending_for_target(self, target_id: int, reason: str) -> int: ...
    def edits_due(self, now: float, sent_since: float, limit: int) -> list[EditRow]: ...
    def settle_edit(self, row_id: int, shown_count: int | None, edit_after: float) -> None: ...
    def story_texts_since(self, since: datetime, limit: int = 2_000) -> list[StoryText]: ...
    def story_texts(self, story_ids: Sequence[str]) -> list[StoryText]: ...
    def queue_digest(
        self,
        target_id: int,
        row: OutboxRow | None,
        when: datetime,
        subscription_ids: Sequence[int] = (),
    ) -> bool: ...
    def counts(self) -> dict[str, int]: ...
    def read_lease(self) -> str | None: ...
    def swap_lease(self, expected: str | None, new: str | None) -> bool: ...


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
