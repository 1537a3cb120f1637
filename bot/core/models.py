"""Platform-neutral values shared by the core, the store and the adapters: frozen, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

TOPICS: tuple[str, ...] = (
    "models",
    "compute",
    "policy",
    "funding",
    "partnerships",
    "talent",
    "data",
    "evaluation",
    "security",
)


@dataclass(frozen=True)
class FeedEntry:
    """One item as parsed from a feed: clean text, canonical URL, UTC date."""

    url: str
    title: str
    summary: str
    published: datetime | None
    source: str
    feed_url: str
    guid: str | None = None
    lang: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed body yields; `warning` names recoverable trouble (e.g. ill-formed XML)."""

    title: str | None
    entries: tuple[FeedEntry, ...]
    warning: str | None = None


@dataclass(frozen=True)
class Mention:
    """A gazetteer entity found in text."""

    key: str
    kind: str
    country: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Classification:
    """Whether an item is about a national AI effort, and who and what it is about."""

    relevant: bool
    score: float
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Article:
    """A stored item."""

    id: str
    url: str
    title: str
    summary: str
    published: datetime | None
    source: str
    lang: str
    relevant: bool
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    story_id: str
    fetched_at: datetime | None = None
    kind: str = "feed"
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Story:
    """One event, possibly reported by several outlets in several languages."""

    id: str
    title: str
    url: str
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    article_count: int = 1
    sources: tuple[str, ...] = ()


class Mode(StrEnum):
    INSTANT = "instant"
    DIGEST = "digest"


@dataclass(frozen=True)
class Target:
    """Where replies and alerts go: one chat, channel, forum topic or the console."""

    platform: str
    chat_id: str
    thread_id: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.chat_id}:{self.thread_id}"


@dataclass(frozen=True)
class SubscriptionSpec:
    """A parsed `/subscribe` request, before it is stored."""

    countries: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    mode: Mode = Mode.INSTANT
    digest_time: str = "09:00"
    digest_day: int | None = None  # weekly digests: 0 = Monday ... 6 = Sunday; None = daily
    quiet_start: str | None = None  # instant alerts held from HH:MM...
    quiet_end: str | None = None  # ...until HH:MM (target's time zone; may wrap midnight)


@dataclass(frozen=True)
class Subscription:
    id: int
    target: Target
    spec: SubscriptionSpec
    paused: bool = False
    paused_reason: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Source:
    """A numbered source under an answer or an alert."""

    title: str
    url: str
    published: str | None = None
    outlet: str | None = None


@dataclass(frozen=True)
class Button:
    """A tap target an adapter may render (inline keyboard, Discord component)."""

    label: str
    action: str


@dataclass(frozen=True)
class Reply:
    """What the core hands an adapter: text plus structure, rendered per platform."""

    text: str
    title: str | None = None
    sources: tuple[Source, ...] = ()
    buttons: tuple[Button, ...] = ()
    ephemeral: bool = False
    grounded: bool | None = None
    mode: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Answer:
    """An answer to a question, shaped like `ask --json`."""

    answer: str
    grounded: bool
    mode: str
    sources: tuple[Source, ...] = ()
    related: tuple[Source, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AlertMessage:
    """One story as an alert, before a platform renders it (HTML, embed, plain text).

    Everything here is plain text from feeds: renderers must escape it and neutralise
    mentions for their platform.
    """

    story_id: str
    title: str
    url: str
    summary: str
    outlet: str
    published: datetime | None
    countries: tuple[str, ...]
    topics: tuple[str, ...]
    also_reported_by: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class SendResult:
    """What a platform returned for a sent message: its id, so it can be edited later."""

    message_id: str
