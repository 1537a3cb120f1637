"""A failing feed backs off, shows its error count, is disabled after a long run of failures,
and comes back with `feeds add`; a flaky feed recovers without losing anything."""

from __future__ import annotations

import time
from pathlib import Path

from bot.core import poll as poll_module
from bot.core.classify import Classifier
from bot.core.fetch import FeedFetcher, FetchLimits
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.poll import FeedPoller, backoff_seconds
from storage.db import open_database
from storage.repositories import Store
from tests.fakes.feed_server import SAMPLE_RSS, FeedServer


def test_backoff_grows_and_is_capped() -> None:
    assert backoff_seconds(60, 1) == 120
    assert backoff_seconds(60, 2) == 240
    assert backoff_seconds(60, 30) == 6 * 3600


async def test_failing_feed_backs_off_disables_and_is_reenabled(
    tmp_path: Path, monkeypatch: object
) -> None:
    store = Store(open_database(tmp_path / "p.db"))
    ingestor = Ingestor(store, Classifier(Gazetteer.load()))
    async with (
        FeedServer(flaky_failures=2) as server,
        FeedFetcher(FetchLimits(allow_private=True, total_timeout=5)) as fetcher,
    ):
        poller = FeedPoller(store, ingestor, fetcher, poll_seconds=60)
        bad = server.url("/status/500")
        store.sources.add_feed(bad)
        before = time.time()
        await poller.poll_once()
        row = store.sources.get(bad)
        assert row is not None
        assert row.error_count == 1 and row.last_status == "error"
        assert row.last_error == "HTTP 500"
        assert row.next_poll_at >= before + 120  # backed off, not retried at once
        assert store.sources.due(time.time()) == []  # not due again yet
        # A long run of failures disables it.
        for _ in range(poll_module.DISABLE_AFTER_FAILURES):
            await poller.poll_once(store.sources.all())
        row = store.sources.get(bad)
        assert row is not None and not row.enabled and row.last_status == "disabled"
        assert store.sources.add_feed(bad) is True  # `feeds add` brings it back
        row = store.sources.get(bad)
        assert row is not None and row.enabled and row.consecutive_failures == 0

        flaky = server.url("/flaky")
        store.sources.add_feed(flaky)
        for _ in range(3):
            await poller.poll_once([s for s in store.sources.all() if s.url == flaky])
        row = store.sources.get(flaky)
        assert row is not None and row.last_status == "ok" and row.error_count == 2
        assert store.articles.count() == len(SAMPLE_RSS.split(b"<item>")) - 1
    store.close()
