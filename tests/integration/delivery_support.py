"""Building blocks for delivery tests and benchmarks: a real store with stories, targets and
queued alerts, and a sender that records what it was asked to send."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.deliver.match import dedupe_key
from bot.core.errors import DeliveryError
from bot.core.models import AlertMessage, Mode, Reply, SendResult, SubscriptionSpec, Target
from bot.core.ports import NewArticle, OutboxRow, StoryCandidate
from storage.db import open_database
from storage.repositories import Store


def make_store(path: Path) -> Store:
    return Store(open_database(path))


def add_story(
    store: Store,
    n: int,
    *,
    title: str | None = None,
    countries: tuple[str, ...] = ("KR",),
    topics: tuple[str, ...] = ("models",),
    outlet: str = "Example News",
    summary: str = "The government backs a national foundation model programme.",
    when: datetime | None = None,
    story_id: str | None = None,
    url: str | None = None,
    outbox: Sequence[OutboxRow] = (),
) -> str:
    """Store one report (a new story unless `story_id` names an existing one)."""
    when = when or datetime.now(UTC)
    url = url or f"https://news.example/{n}-{uuid.uuid4().hex[:6]}"
    aid = "a" + hashlib.blake2b(url.encode(), digest_size=8).hexdigest()
    sid = story_id or f"s{n:06d}"
    existing = store.articles.story(sid)
    sources = tuple(dict.fromkeys([*(existing.sources if existing else ()), outlet]))
    count = (existing.article_count + 1) if existing else 1
    article = NewArticle(
        id=aid,
        url=url,
        guid=None,
        source_id=None,
        source=outlet,
        kind="feed",
        title=title or f"Story {n}: Korea funds sovereign AI models",
        summary=summary,
        published=when,
        fetched_at=when,
        lang="en",
        relevant=True,
        score=1.0,
        countries=countries,
        topics=topics,
        entities=(),
        story_id=sid,
        terms="",
    )
    story = StoryCandidate(
        id=sid,
        title=existing.title if existing else article.title,
        url=existing.url if existing else url,
        countries=countries,
        topics=topics,
        entities=(),
        signature="",
        relevant=True,
        first_seen=existing.first_seen if existing else when,
        last_seen=when,
        event_at=when,
        article_count=count,
        sources=sources,
    )
    store.articles.save([article], [story], outbox)
    return sid


def article_of(store: Store, story_id: str) -> str:
    return store.articles.articles_of_story(story_id)[0].id


def add_target(
    store: Store,
    platform: str,
    chat_id: str,
    *,
    thread_id: str = "",
    spec: SubscriptionSpec | None = None,
    chat_type: str | None = None,
) -> int:
    target = Target(platform, chat_id, thread_id)
    store.subscriptions.add(target, spec or SubscriptionSpec(countries=("KR",)))
    if chat_type:
        store.subscriptions.set_chat_type(target, chat_type)
    tid = store.subscriptions.target_id(target)
    assert tid is not None
    return tid


def alert_rows(store: Store, story_id: str, target_ids: Sequence[int]) -> list[OutboxRow]:
    aid = article_of(store, story_id)
    return [
        OutboxRow(
            dedupe_key=dedupe_key(story_id, tid),
            kind="alert",
            story_id=story_id,
            target_id=tid,
            subscription_id=None,
            nonce=uuid.uuid4().hex[:25],
            payload={"article_id": aid},
        )
        for tid in target_ids
    ]


def queue_alerts(store: Store, story_id: str, target_ids: Sequence[int]) -> int:
    return store.outbox.enqueue(alert_rows(store, story_id, target_ids))


def digest_spec(at: str = "09:00", **kw: tuple[str, ...]) -> SubscriptionSpec:
    return SubscriptionSpec(mode=Mode.DIGEST, digest_time=at, **kw)  # type: ignore[arg-type]


def rows(store: Store) -> list[dict[str, object]]:
    cur = store.db.execute("SELECT * FROM outbox ORDER BY id")
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


@dataclass
class Sent:
    target: Target
    kind: str
    body: AlertMessage | Reply
    nonce: str
    t: float


@dataclass
class RecordingSender:
    """An AlertSender that keeps what it is given; `fail` scripts errors per chat id."""

    platform: str = "telegram"
    latency: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    edits: list[tuple[Target, str, AlertMessage]] = field(default_factory=list)
    fail: dict[str, list[DeliveryError]] = field(default_factory=dict)

    async def _go(self, target: Target, kind: str, body: AlertMessage | Reply, nonce: str) -> str:
        if self.latency:
            await asyncio.sleep(self.latency)
        script = self.fail.get(target.chat_id)
        if script:
            raise script.pop(0)
        loop = asyncio.get_running_loop()
        self.sent.append(Sent(target, kind, body, nonce, loop.time()))
        return str(len(self.sent))

    async def send_alert(self, target: Target, alert: AlertMessage, *, nonce: str) -> SendResult:
        return SendResult(await self._go(target, "alert", alert, nonce))

    async def edit_alert(self, target: Target, message_id: str, alert: AlertMessage) -> None:
        self.edits.append((target, message_id, alert))

    async def send_text(self, target: Target, reply: Reply, *, nonce: str) -> SendResult:
        return SendResult(await self._go(target, "text", reply, nonce))

    def to(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.target.chat_id == chat_id]
