"""Operations pieces on their own: liveness, the lock, progress output, the status report."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.ports import SourceRow
from bot.ops.heartbeat import Heartbeat, HeartbeatWriter
from bot.ops.liveness import Liveness
from bot.ops.lock import DeliveryLock
from bot.ops.progress import Progress
from bot.ops.status import StatusFacts, feed_state, status_lines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_loop_is_dead_when_its_task_ends_or_it_goes_quiet() -> None:
    clock = Clock()
    live = Liveness(clock)
    stop = asyncio.Event()
    task = asyncio.create_task(stop.wait())
    live.track("poller", task, max_silence=60)  # type: ignore[arg-type]
    assert live.problems() == []
    clock.now += 61
    assert live.problems() == ["poller loop silent for 61s"]
    live.beat("poller")
    assert live.problems() == []
    stop.set()
    await task
    assert live.problems() == ["poller loop stopped"]

    async def boom() -> None:
        raise RuntimeError("bad")

    crashed = asyncio.create_task(boom())
    await asyncio.gather(crashed, return_exceptions=True)
    live.track("delivery", crashed)
    assert "delivery loop crashed: RuntimeError" in live.problems()


def test_store_failures_are_reported_until_a_write_succeeds() -> None:
    clock = Clock()
    live = Liveness(clock)
    failing = True

    def write(key: str, value: str) -> None:
        if failing:
            raise OSError("database or disk is full")

    writer = HeartbeatWriter(write, liveness=live)
    assert not writer.write_once()
    clock.now += 5
    assert live.problems() == ["store not writable for 5s: database or disk is full"]
    failing = False
    assert writer.write_once()
    assert live.problems() == []


def test_heartbeat_round_trip_and_garbage() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    hb = Heartbeat(1, "h", "0", now, now, 15.0, {"poller": True}, {"telegram": "connected"}, True)
    assert Heartbeat.decode(hb.encode()) == hb
    assert hb.fresh(now + timedelta(seconds=40))
    assert not hb.fresh(now + timedelta(seconds=50))
    assert Heartbeat.decode("{not json") is None
    assert Heartbeat.decode('{"pid": 1}') is None


def test_the_lock_admits_one_holder_at_a_time(tmp_path: Path) -> None:
    db = tmp_path / "sw.db"
    first, second = DeliveryLock(db), DeliveryLock(db)
    assert first.acquire()
    assert not second.acquire()
    assert second.holder() is not None and "pid" in (second.holder() or "")
    first.release()
    assert second.acquire()
    second.release()
    assert DeliveryLock(":memory:").acquire()


def test_progress_logs_a_few_lines_without_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.ops.progress")
    with Progress(100, "ingesting", unit="file", stream=io.StringIO()) as bar:
        for _ in range(100):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert 5 <= len(lines) <= 11
    assert lines[-1] == "ingesting: 100/100 file"


def test_progress_draws_a_bar_on_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.ops.progress")
    out = io.StringIO()
    with Progress(None, "backing up", unit="page", stream=out, bar=True) as bar:
        bar.set_total(10)
        bar.update(10)
    assert "backing up" in out.getvalue() and "/10 " in out.getvalue()
    assert bar.done == 10
    assert caplog.records == []


def test_one_item_is_not_long_work(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.ops.progress")
    out = io.StringIO()
    with Progress(1, "ingesting", stream=out, bar=True) as bar:
        bar.update()
    assert out.getvalue() == "" and caplog.records == []


def _source(url: str, status: str | None, enabled: bool = True) -> SourceRow:
    return SourceRow(
        id=1,
        url=url,
        name=None,
        kind="feed",
        enabled=enabled,
        etag=None,
        last_modified=None,
        last_status=status,
        last_error="boom" if status in ("timeout", "not_a_feed") else None,
        error_count=0,
        consecutive_failures=0,
        next_poll_at=0,
        last_polled_at=None,
        last_success_at="2026-01-01T00:00:00+00:00" if status == "ok" else None,
    )


def test_status_names_every_feed_state() -> None:
    rows = [
        _source("https://a/ok", "ok"),
        _source("https://a/nm", "not_modified"),
        _source("https://a/empty", "empty"),
        _source("https://a/slow", "timeout"),
        _source("https://a/html", "not_a_feed"),
        _source("https://a/off", "error", enabled=False),
    ]
    assert [feed_state(r) for r in rows] == [
        "ok",
        "not modified",
        "empty",
        "timeout",
        "not a feed",
        "disabled",
    ]
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    beat = Heartbeat(7, "h", "0", now, now - timedelta(hours=1), 15.0, {}, {"console": "running"})
    facts = StatusFacts(rows, 3, [beat], now, outbox_oldest_age=120)
    text = "\n".join(status_lines(facts))
    assert "outbox: 3 queued (oldest waiting 2m)" in text
    assert "last successful poll: 2026-01-01T00:00:00+00:00 (5m ago)" in text
    assert "pid 7 on h, up 60m" in text and "console running" in text
    assert "timeout       https://a/slow" in text and "(boom)" in text
    short = "\n".join(status_lines(facts, full=False))
    assert "https://a/ok" not in short and "https://a/html" in short
    gone = StatusFacts(rows, 0, [], now)
    assert "no heartbeat recorded" in "\n".join(status_lines(gone))
