"""Parsed feed entries -> stored articles: dedupe, classify, group, queue alerts, save.

The one place where the stages run in order for a batch of entries, whatever their origin (a
polled feed, a file given to `ingest`, the starter knowledge). Everything a batch causes is
written in one transaction, so a crash mid-batch stores each item, and queues its alerts,
exactly once on the next try.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.core.classify import Classifier
from bot.core.cluster import StoryGrouper
from bot.core.langdetect import detect_language
from bot.core.models import Classification, FeedEntry
from bot.core.ports import NewArticle, OutboxRow, StorePort, StoryCandidate
from bot.core.starter import read_starter_entries
from bot.core.textindex import entity_token, index_terms
from bot.ops import metrics

log = logging.getLogger(__name__)

# Stories last reported longer ago than this are not reopened by new reports: a restart seeds
# the grouper with the stories inside it, and a long-running process forgets the rest.
STORY_HORIZON = timedelta(days=60)

Matcher = Callable[[StoryCandidate, NewArticle, bool], list[OutboxRow]]


@dataclass
class IngestCounts:
    fetched: int = 0
    new: int = 0
    relevant: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        self.fetched += other.fetched
        self.new += other.new
        self.relevant += other.relevant
        self.duplicates += other.duplicates
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, object]:
        return {
            "fetched": self.fetched,
            "new": self.new,
            "relevant": self.relevant,
            "duplicates": self.duplicates,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Batch:
    """Entries from one feed (GUIDs are unique only within their feed)."""

    entries: Sequence[FeedEntry]
    source_id: int | None


def article_id(url: str) -> str:
    return "a" + hashlib.blake2b(url.encode(), digest_size=8).hexdigest()


class Ingestor:
    """Stores entries; holds the story grouper's in-memory index for the process's lifetime."""

    def __init__(
        self,
        store: StorePort,
        classifier: Classifier,
        matcher: Matcher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.matcher = matcher
        self.clock = clock
        self.grouper = StoryGrouper()
        self._seeded = False

    def _seed(self) -> None:
        if not self._seeded:
            for entry, label in read_starter_entries():
                verdict = self.classifier.classify(entry.title, entry.summary, entry.lang)
                self.grouper.add_background(
                    entry.title, entry.summary, verdict.entities, label.countries
                )
            since = self.clock() - STORY_HORIZON
            self.grouper.seed(self.store.articles.recent_stories(since))
            self._seeded = True

    def ingest(
        self,
        entries: Sequence[FeedEntry],
        *,
        source_id: int | None,
        kind: str = "feed",
        alerts: bool = True,
        labels: Mapping[str, Classification] | None = None,
    ) -> IngestCounts:
        """Store what is new in `entries`; `labels` override the classifier (curated data)."""
        return self.ingest_many(
            [Batch(entries, source_id)], kind=kind, alerts=alerts, labels=labels
        )[0]

    def ingest_many(
        self,
        batches: Sequence[Batch],
        *,
        kind: str = "feed",
        alerts: bool = True,
        labels: Mapping[str, Classification] | None = None,
    ) -> list[IngestCounts]:
        """Store what is new in several feeds at once, oldest report first; counts per batch.

        Stories form in the order events happened, whatever order the feeds were read in: a
        later report joins the story its predecessors opened, as it would have when polled live.
        """
        counts = [IngestCounts(fetched=len(b.entries)) for b in batches]
        seen: set[str] = set()
        fresh = [(n, e) for n, b in enumerate(batches) for e in self._unseen(b, counts[n], seen)]
        if not fresh:
            return counts
        self._seed()  # the grouper's index, once per process, when there is something to group
        now = self.clock()
        far = datetime.max.replace(tzinfo=UTC)
        fresh.sort(key=lambda ne: ne[1].published or far)  # stable: undated keep feed order
        articles: list[NewArticle] = []
        stories: dict[str, StoryCandidate] = {}
        outbox: list[OutboxRow] = []
        new_stories = 0
        for n, entry in fresh:
            try:
                article, story, new_story = self._prepare(
                    entry, batches[n].source_id, kind, now, (labels or {}).get(entry.url)
                )
            except Exception as exc:  # one odd item must not sink the batch
                log.warning("item skipped", extra={"url": entry.url, "reason": repr(exc)})
                counts[n].errors.append(f"{entry.url}: {exc}")
                continue
            articles.append(article)
            stories[story.id] = story
            new_stories += int(new_story)
            counts[n].new += 1
            counts[n].relevant += int(article.relevant)
            if alerts and self.matcher is not None and article.relevant:
                outbox.extend(self.matcher(story, article, new_story))
        if articles:
            self.store.articles.save(articles, list(stories.values()), outbox)
            metrics.items_ingested(len(articles), sum(a.relevant for a in articles), new_stories)
        self.grouper.forget_before(now - STORY_HORIZON)
        return counts

    def new_entries(self, batches: Sequence[Batch]) -> list[FeedEntry]:
        """What `ingest_many` would store now: entries not known yet (to ask a model about)."""
        seen: set[str] = set()
        scratch = IngestCounts()
        return [e for b in batches for e in self._unseen(b, scratch, seen)]

    def _unseen(self, batch: Batch, counts: IngestCounts, seen: set[str]) -> list[FeedEntry]:
        """The batch's entries not stored yet (by URL, or by GUID within the same feed)."""
        if not batch.entries:
            return []
        entries = batch.entries
        known_urls = self.store.articles.known_urls(e.url for e in entries)
        known_guids = self.store.articles.known_guids(
            batch.source_id, (e.guid for e in entries if e.guid)
        )
        out: list[FeedEntry] = []
        for entry in entries:
            if not entry.url:  # no link: nothing to show, cite or deduplicate on
                continue
            if (
                entry.url in known_urls
                or entry.url in seen
                or (entry.guid and entry.guid in known_guids)
            ):
                counts.duplicates += 1
                continue
            seen.add(entry.url)
            out.append(entry)
        return out

    def _prepare(
        self,
        entry: FeedEntry,
        source_id: int | None,
        kind: str,
        now: datetime,
        label: Classification | None,
    ) -> tuple[NewArticle, StoryCandidate, bool]:
        lang = entry.lang or detect_language(f"{entry.title} {entry.summary}")
        verdict = self.classifier.classify(entry.title, entry.summary, lang)
        if label is not None:
            verdict = Classification(
                label.relevant, label.score, label.countries, label.topics, verdict.entities
            )
        aid = article_id(entry.url)
        when = entry.published or now
        if when > now + timedelta(days=1):
            when = now
        story = self.grouper.assign(
            article_id=aid,
            title=entry.title,
            url=entry.url,
            summary=entry.summary,
            source=entry.source,
            when=when,
            dated=entry.published is not None,
            # Background knowledge is not news: it must not absorb the reports that arrive.
            relevant=verdict.relevant and kind != "starter",
            countries=verdict.countries,
            topics=verdict.topics,
            entities=verdict.entities,
        )
        terms = index_terms(
            f"{entry.title}\n{entry.summary}", (entity_token(e) for e in verdict.entities)
        )
        article = NewArticle(
            id=aid,
            url=entry.url,
            guid=entry.guid,
            source_id=source_id,
            source=entry.source,
            kind=kind,
            title=entry.title,
            summary=entry.summary,
            published=entry.published,
            fetched_at=now,
            lang=lang,
            relevant=verdict.relevant,
            score=verdict.score,
            countries=verdict.countries,
            topics=verdict.topics,
            entities=verdict.entities,
            story_id=story.id,
            terms=terms,
        )
        return article, story, story.article_count == 1


__all__ = ["Batch", "IngestCounts", "Ingestor", "article_id"]
