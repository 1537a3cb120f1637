"""Poll due feeds with conditional GET, parse, ingest; back off and disable failing feeds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from bot.core.errors import FeedError, FetchTimeout, NotAFeed
from bot.core.fetch import FeedFetcher, FetchResult
from bot.core.ingest import Batch, IngestCounts, Ingestor
from bot.core.models import ParsedFeed
from bot.core.parse import parse_feed
from bot.core.ports import SourceRow, StorePort
from bot.core.refine import ItemRefiner, ingest_refined
from bot.ops import metrics
from bot.ops.liveness import beat

log = logging.getLogger(__name__)

DISABLE_AFTER_FAILURES = 20
MAX_BACKOFF_SECONDS = 6 * 3600


def backoff_seconds(poll_seconds: float, failures: int) -> float:
    """Exponential back-off after consecutive failures, capped at six hours."""
    return min(poll_seconds * (2 ** min(failures, 10)), max(MAX_BACKOFF_SECONDS, poll_seconds))


def failure_status(exc: FeedError) -> str:
    if isinstance(exc, FetchTimeout):
        return "timeout"
    if isinstance(exc, NotAFeed):
        return "not_a_feed"
    return "error"


class FeedPoller:
    def __init__(
        self,
        store: StorePort,
        ingestor: Ingestor,
        fetcher: FeedFetcher,
        poll_seconds: float,
        refiner: ItemRefiner | None = None,
    ) -> None:
        self.refiner = refiner
        self.store = store
        self.ingestor = ingestor
        self.fetcher = fetcher
        self.poll_seconds = poll_seconds

    async def poll_once(self, sources: Sequence[SourceRow] | None = None) -> IngestCounts:
        """Poll `sources` (default: every enabled feed that is due) once.

        Everything fetched in one round is stored together, oldest report first, so stories
        form in the order events happened rather than the order feeds answered.
        """
        due = list(sources) if sources is not None else self.store.sources.due(time.time())
        total = IngestCounts()
        if not due:
            return total
        results = await self.fetcher.fetch_many([(s.url, s.etag, s.last_modified) for s in due])
        fetched: list[tuple[SourceRow, FetchResult, ParsedFeed]] = []
        for source, result in zip(due, results, strict=True):
            outcome = self._read(source, result)
            if isinstance(outcome, IngestCounts):
                total.add(outcome)
            elif isinstance(result, FetchResult):
                fetched.append((source, result, outcome))
            await asyncio.sleep(0)
        if fetched:
            batches = [Batch(parsed.entries, source.id) for source, _, parsed in fetched]
            stored = await ingest_refined(self.ingestor, batches, self.refiner)
            for (source, result, parsed), counts in zip(fetched, stored, strict=True):
                self._record(source, result, parsed, counts)
                total.add(counts)
        return total

    def _read(
        self, source: SourceRow, result: FetchResult | FeedError
    ) -> IngestCounts | ParsedFeed:
        """The parsed feed, or the (empty) counts of a feed that failed or had not changed."""
        now = time.time()
        if isinstance(result, FeedError):
            return self._failed(source, result, now)
        if result.not_modified:
            metrics.feed_polled(ok=True)
            self.store.sources.record_success(
                source.id,
                status="not_modified",
                etag=result.etag,
                last_modified=result.last_modified,
                next_poll_at=now + self.poll_seconds,
            )
            return IngestCounts()
        try:
            return parse_feed(
                result.body,
                feed_url=result.final_url,
                content_type=result.content_type,
                source=source.name,
            )
        except FeedError as exc:
            return self._failed(source, exc, now)

    def _record(
        self, source: SourceRow, result: FetchResult, parsed: ParsedFeed, counts: IngestCounts
    ) -> None:
        metrics.feed_polled(ok=True)
        self.store.sources.record_success(
            source.id,
            status="ok" if parsed.entries else "empty",
            etag=result.etag,
            last_modified=result.last_modified,
            next_poll_at=time.time() + self.poll_seconds,
            name=parsed.title,
            warning=parsed.warning,
        )
        log.info("feed polled", extra={"feed_url": source.url, **counts.as_dict()})

    def _failed(self, source: SourceRow, exc: FeedError, now: float) -> IngestCounts:
        failures = source.consecutive_failures + 1
        disable = failures >= DISABLE_AFTER_FAILURES
        metrics.feed_polled(ok=False, reason="disabled" if disable else failure_status(exc))
        self.store.sources.record_failure(
            source.id,
            status="disabled" if disable else failure_status(exc),
            error=exc.reason,
            next_poll_at=now + backoff_seconds(self.poll_seconds, failures),
            disable=disable,
        )
        log.info(
            "feed failed",
            extra={
                "feed_url": source.url,
                "reason": exc.reason,
                "failures": failures,
                "disabled": disable,
            },
        )
        return IngestCounts(errors=[f"{source.url}: {exc.reason}"])

    async def run_forever(self, stop: asyncio.Event, tick: float = 1.0) -> None:
        while not stop.is_set():
            beat("poller")
            try:
                await self.poll_once()
            except Exception:  # the loop must outlive any one bad poll
                log.exception("poll round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(tick, self.poll_seconds))
