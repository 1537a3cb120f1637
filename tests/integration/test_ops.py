"""Operations proofs with a real SQLite store, real HTTP to the health server, real processes.

What an operator relies on: `/healthz` flips to 503 and back when the store stops taking
writes or a loop dies; `/metrics` counts what happened; a backup taken under load restores to
the same answers; retention keeps what pending work needs and leaves the FTS index sound; a
second process on a store does not deliver; a long write lock means waiting, not a crash; a
damaged store names its last backup.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.adapters.console import CONSOLE_TARGET, ConsoleAlertSender
from bot.app import App, build_app
from bot.config import load_settings
from bot.core.classify import Classifier
from bot.core.errors import SovereignWatchError
from bot.core.fetch import FeedFetcher
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.models import Classification, FeedEntry, SubscriptionSpec, Target
from bot.core.ports import OutboxRow
from bot.ops.liveness import LIVENESS
from storage.backup import last_backup
from storage.db import open_database
from storage.repositories import Store
from storage.retention import LAST_RUN_KEY, prune
from tests.conftest import cli_env
from tests.fakes.feed_server import FeedServer, make_rss

ITEMS = [
    (
        "South Korea's science ministry funds sovereign AI foundation model teams",
        "https://ops.example/kr-models",
        "The Ministry of Science and ICT backs national foundation models built by Korean "
        "companies, with government GPU compute for training.",
    ),
    (
        "Japan widens GENIAC compute grants for domestic foundation models",
        "https://ops.example/jp-geniac",
        "METI gives Japanese model builders more GPU time under the GENIAC program.",
    ),
    (
        "France backs Mistral AI with national supercomputer time",
        "https://ops.example/fr-mistral",
        "The French government supports Mistral AI training on national compute.",
    ),
]
FEED = make_rss("Ops Wire", ITEMS)
LATER = make_rss(
    "Ops Wire",
    [
        *ITEMS,
        (
            "India's IndiaAI Mission picks Sarvam to build a sovereign language model",
            "https://ops.example/in-sarvam",
            "The Indian government chose Sarvam AI to train a national foundation model.",
        ),
    ],
)
QUESTION = "What is South Korea doing about sovereign AI foundation models?"


# --- helpers ---------------------------------------------------------------------------------
@pytest.fixture
async def feeds(tmp_path: Path) -> AsyncIterator[tuple[FeedServer, Path]]:
    async with FeedServer() as server:
        server.set_feed("/ops.xml", FEED)
        listing = tmp_path / "feeds.txt"
        listing.write_text(server.url("/ops.xml") + "\n")
        yield server, listing


def _env(monkeypatch: pytest.MonkeyPatch, db_path: Path, feeds_file: Path, **extra: str) -> None:
    values = {
        "SW_DB_PATH": str(db_path),
        "SW_FEEDS_FILE": str(feeds_file),
        "SW_ALLOW_PRIVATE_FEEDS": "true",
        "SW_LOAD_STARTER": "false",
        "SW_POLL_SECONDS": "1",
        "SW_HEARTBEAT_SECONDS": "0.1",
        "SW_HTTP_PORT": "0",
        **extra,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)


async def _until(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def _health(port: int) -> tuple[int, dict[str, Any]]:
    status, body = await _get(f"http://127.0.0.1:{port}/healthz")
    return status, json.loads(body)


async def _health_is(port: int, want: int, text: str = "") -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status, body = await _health(port)
        return body if status == want and text in json.dumps(body) else None

    result: dict[str, Any] = await _until(check)
    return result


async def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = await _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _outbox_rows(db_path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return conn.execute("SELECT dedupe_key, state FROM outbox ORDER BY id").fetchall()


class BotProcess:
    """A running `sovereign-watch` with its output collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""
        self.err = ""
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, "out")),
            asyncio.create_task(self._read(proc.stderr, "err")),
        ]

    @classmethod
    async def start(cls, db_path: Path, *args: str, **env: str) -> BotProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(db_path, **env),
            cwd=db_path.parent.parent,
        )
        return cls(proc)

    async def _read(self, stream: asyncio.StreamReader | None, name: str) -> None:
        assert stream is not None
        while chunk := await stream.read(4096):
            setattr(self, name, getattr(self, name) + chunk.decode("utf-8", "replace"))

    def logs(self) -> list[dict[str, Any]]:
        found = []
        for line in self.err.splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found

    async def port(self) -> int:
        def listening() -> int | None:
            for entry in self.logs():
                if entry.get("msg") == "health endpoint listening":
                    return int(entry["port"])
            assert self.proc.returncode is None, self.err[-2000:]
            return None

        port: int = await _until(listening, timeout=60)
        return port

    async def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self, timeout: float = 30) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)
        return self.proc.returncode or 0


async def _cli(db_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(db_path, SW_LOAD_STARTER="false", **env),
        cwd=db_path.parent.parent,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


# --- /healthz and /metrics -------------------------------------------------------------------
async def _probe(db_path: Path, port: int) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.ops.probe",
        stdout=asyncio.subprocess.DEVNULL,
        env=cli_env(db_path, SW_HTTP_PORT=str(port)),
    )
    return await asyncio.wait_for(proc.wait(), 60)


async def _started(monkeypatch: pytest.MonkeyPatch, db_path: Path, listing: Path) -> App:
    _env(monkeypatch, db_path, listing)
    app = build_app(load_settings(env_file=None))
    app.sync_feed_list()
    LIVENESS.clear()
    return app


async def test_healthz_follows_the_store_and_the_loops(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, feeds: tuple[FeedServer, Path]
) -> None:
    server, listing = feeds
    app = await _started(monkeypatch, db_path, listing)
    app.store.subscriptions.add(CONSOLE_TARGET, SubscriptionSpec())  # alerts queue, unsent
    ops = app.operations(retention_first_delay=0.0)
    stop = asyncio.Event()
    await ops.start(stop)
    try:
        port = ops.port
        assert port
        async with FeedFetcher(app.fetch_limits()) as fetcher:
            poller = asyncio.create_task(app.poller(fetcher).run_forever(stop))
            ops.track("poller", poller, max_silence=30)
            await _until(lambda: app.store.articles.count() == 3)
            body = await _health_is(port, 200)
            assert body["loops"] == {"heartbeat": True, "poller": True, "retention": True}
            assert await _probe(db_path, port) == 0  # what Docker's HEALTHCHECK runs
            queued = _outbox_rows(db_path)
            assert len(queued) == 3 and {state for _, state in queued} == {"pending"}
            await _until(lambda: app.store.meta.get(LAST_RUN_KEY))  # retention ran from ops

            # The store stops taking writes (as on a full disk or a read-only remount).
            app.store.db.conn.execute("PRAGMA query_only = 1")
            body = await _health_is(port, 503, "store not writable")
            assert "readonly" in " ".join(body["reasons"])
            assert await _probe(db_path, port) == 1
            # ...the bot still answers from what it has, and /status still works.
            reply = await app.service.handle_text(CONSOLE_TARGET, "console", QUESTION)
            assert reply is not None and reply.sources
            status = await app.service.handle_text(CONSOLE_TARGET, "console", "/status")
            assert status is not None and "outbox: 3 queued" in status.text
            server.set_feed("/ops.xml", LATER)  # a new item arrives while nothing can be saved
            await asyncio.sleep(2.5)
            assert app.store.articles.count() == 3
            assert _outbox_rows(db_path) == queued  # nothing queued is lost

            # Space returns: healthy again, and the item missed meanwhile is stored.
            app.store.db.conn.execute("PRAGMA query_only = 0")
            await _health_is(port, 200)
            await _until(lambda: app.store.articles.count() == 4)
            assert _outbox_rows(db_path)[:3] == queued

            # A loop dies: 503 naming it; a new one takes its place: 200.
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            body = await _health_is(port, 503, "poller loop stopped")
            assert body["loops"]["poller"] is False
            poller = asyncio.create_task(app.poller(fetcher).run_forever(stop))
            ops.track("poller", poller, max_silence=30)
            await _health_is(port, 200)
            stop.set()
            await poller
    finally:
        stop.set()
        await ops.close()
        app.close()


async def test_metrics_after_a_scripted_run(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, feeds: tuple[FeedServer, Path]
) -> None:
    _server, listing = feeds
    app = await _started(monkeypatch, db_path, listing)
    app.store.subscriptions.add(CONSOLE_TARGET, SubscriptionSpec())
    ops = app.operations()
    stop = asyncio.Event()
    await ops.start(stop)
    try:
        port = ops.port
        assert port
        before = await _scrape(port)
        async with FeedFetcher(app.fetch_limits()) as fetcher:
            counts = await app.poller(fetcher).poll_once()
        assert counts.new == 3 and counts.relevant == 3
        await app.service.answer(QUESTION)
        mid = await _scrape(port)
        assert _sample(mid, "sw_alerts_queued_total", platform="console") == 3
        assert _sample(mid, "sw_alerts_pending", platform="console") == 3
        assert _sample(mid, "sw_outbox_depth") == 3

        printed = io.StringIO()
        worker = app.delivery_worker({"console": ConsoleAlertSender(printed)})
        stats = await worker.drain_once(max_wait=10)
        assert stats.sent == 3
        after = await _scrape(port)
    finally:
        stop.set()
        await ops.close()
        app.close()

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("sw_feeds_polled_total") == 1
    assert grew("sw_items_ingested_total") == 3
    assert grew("sw_items_kept_total") == 3
    assert grew("sw_stories_started_total") == 3
    assert grew("sw_answer_latency_seconds_count", mode="extractive") == 1
    assert _sample(after, "sw_articles") == 3 and _sample(after, "sw_stories") == 3
    assert _sample(after, "sw_alerts_sent_total", platform="console") == 3
    assert _sample(after, "sw_alerts_failed_total", platform="console") == 0
    assert _sample(after, "sw_outbox_depth") == 0
    assert _sample(after, "sw_outbox_oldest_age_seconds") == 0
    assert _sample(after, "sw_store_writable") == 1
    assert _sample(after, "sw_loop_up", loop="heartbeat") == 1
    assert "Mistral" in printed.getvalue()


# --- a full disk under a real process ----------------------------------------------------------
@pytest.mark.slow
async def test_a_full_disk_turns_health_red_and_the_bot_keeps_answering(
    db_path: Path, feeds: tuple[FeedServer, Path]
) -> None:
    """RLIMIT_FSIZE makes every write of the process fail, as a full disk would."""
    _server, listing = feeds
    bot = await BotProcess.start(
        db_path,
        "run",
        SW_FEEDS_FILE=str(listing),
        SW_LOAD_STARTER="false",
        SW_POLL_SECONDS="1",
        SW_HEARTBEAT_SECONDS="0.2",
        SW_HTTP_PORT="0",
        SW_LOG_LEVEL="INFO",
    )
    try:
        port = await bot.port()
        await _health_is(port, 200)
        await _until(lambda: _articles(db_path) == 3, 30)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(bot.proc.pid, resource.RLIMIT_FSIZE, (1, hard))
        body = await _health_is(port, 503, "store not writable")
        assert "disk I/O error" in json.dumps(body) or "full" in json.dumps(body)
        await bot.say(QUESTION)
        await _until(lambda: "Sources:" in bot.out or "[1]" in bot.out, 30)
        assert bot.proc.returncode is None
        resource.prlimit(bot.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
        await _health_is(port, 200)
        await bot.say("/quit")
        assert await bot.stop() == 0
    finally:
        await bot.stop()
    assert "database is locked" not in bot.err
    assert "Traceback" not in bot.out


def _articles(db_path: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
    except sqlite3.Error:
        return -1


# --- backup and restore --------------------------------------------------------------------
class Writer(threading.Thread):
    """Another connection committing small writes as fast as it can."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(daemon=True)
        self.db_path = db_path
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            while not self.stop.is_set():
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?)", [f"w:{self.written}", "x"]
                )
                conn.commit()
                self.written += 1
        finally:
            conn.close()


async def test_backup_under_load_restores_to_the_same_answers(
    db_path: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(FEED)
    code, _, err = await _cli(db_path, "ingest", str(feed))
    assert code == 0, err
    code, before, err = await _cli(db_path, "ask", "--json", QUESTION)
    assert code == 0, err
    assert json.loads(before)["sources"]

    writer = Writer(db_path)
    writer.start()
    try:
        await _until(lambda: writer.written > 50)
        target = tmp_path / "backups" / "sw-backup.db"
        code, out, err = await _cli(db_path, "backup", str(target))
        assert code == 0, err
        assert "backup written to" in out
        await _until(lambda: writer.written > 200)  # still writing after the copy
    finally:
        writer.stop.set()
        writer.join()

    with contextlib.closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        keys = {k for (k,) in copy.execute("SELECT key FROM meta WHERE key LIKE 'w:%'")}
    # One moment's snapshot: a prefix of the writer's rows, none missing in between.
    assert 0 < len(keys) < writer.written
    assert keys == {f"w:{i}" for i in range(len(keys))}
    recorded = last_backup(db_path)
    assert recorded is not None and recorded.path == str(target.resolve())

    # The README's restore: stop the bot, copy the backup over the store, drop -wal/-shm.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    code, wiped, _ = await _cli(db_path, "ask", "--json", QUESTION)
    assert json.loads(wiped)["sources"] == []
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(target, db_path)
    code, after, err = await _cli(db_path, "ask", "--json", QUESTION)
    assert code == 0, err
    assert json.loads(after) == json.loads(before)

    code, _, err = await _cli(db_path, "backup", str(target))
    assert code == 2 and "exists already" in err


# --- retention -------------------------------------------------------------------------------
def _entry(title: str, url: str, summary: str) -> FeedEntry:
    return FeedEntry(
        url=url,
        title=title,
        summary=summary,
        published=None,
        source="Ops Wire",
        feed_url="https://ops.example/feed",
    )


def test_retention_keeps_pending_work_and_the_fts_index_sound(db_path: Path) -> None:
    store = Store(open_database(db_path))
    classifier = Classifier(Gazetteer.load())
    now = datetime.now(UTC)
    old = now - timedelta(days=400)

    def ingest(when: datetime, entry: FeedEntry, kind: str = "feed") -> str:
        ingestor = Ingestor(store, classifier, clock=lambda: when)
        country = {"a": "KR", "b": "JP", "c": "FR", "d": "IN", "e": "DE", "f": "BR"}
        labels = {entry.url: Classification(True, 1.0, (country[entry.url[-1]],), ("policy",))}
        ingestor.ingest([entry], source_id=None, kind=kind, labels=labels)
        found = store.articles.by_url(entry.url)
        assert found is not None
        return found.story_id

    pending = ingest(old, _entry("Zebrafish pending alert", "https://o.example/a", "alpha"))
    sent = ingest(old, _entry("Quokka sent alert", "https://o.example/b", "bravo"))
    orphan = ingest(old, _entry("Narwhal forgotten item", "https://o.example/c", "charlie"))
    recent = ingest(now, _entry("Okapi fresh item", "https://o.example/d", "delta"))
    starter = ingest(old, _entry("Axolotl background", "https://o.example/e", "echo"), "starter")
    week = ingest(now - timedelta(days=5), _entry("Pangolin week", "https://o.example/f", "fox"))
    assert len({pending, sent, orphan, recent, starter, week}) == 6

    target_id = store.subscriptions.target_id(Target("telegram", "100"))
    assert target_id is not None

    def queue(story_id: str, url: str) -> None:
        art = store.articles.by_url(url)
        assert art is not None
        store.outbox.enqueue(
            [
                OutboxRow(
                    dedupe_key=f"alert:{story_id}:{target_id}",
                    kind="alert",
                    story_id=story_id,
                    target_id=target_id,
                    subscription_id=None,
                    nonce=story_id,
                    payload={"article_id": art.id},
                )
            ]
        )

    queue(pending, "https://o.example/a")
    queue(sent, "https://o.example/b")
    (sent_id,) = store.db.execute("SELECT id FROM outbox WHERE story_id = ?", [sent]).fetchone()
    store.outbox.settle_sent(sent_id, "m1", time.time())
    store.db.execute(
        "INSERT INTO conversations(key, history, updated_at) VALUES ('old', '[]', ?)",
        [old.timestamp()],
    )
    store.db.conn.commit()
    assert store.articles.search("zebrafish OR quokka OR narwhal")

    result = prune(store.db, days=365, now=now)

    urls = {a.url for a in store.articles.export(kind="feed")}
    assert urls == {"https://o.example/a", "https://o.example/d", "https://o.example/f"}
    assert store.articles.by_url("https://o.example/e") is not None  # starter knowledge stays
    assert store.articles.story(pending) is not None
    assert store.articles.story(sent) is not None  # an outbox row names it: kept, tiny
    assert store.articles.story(orphan) is None
    assert result.articles == 2 and result.stories == 1
    assert result.kept_for_pending == 1 and result.conversations == 1
    store.db.execute("INSERT INTO articles_fts(articles_fts) VALUES('integrity-check')")
    assert [h.article.url for h in store.articles.search("zebrafish")] == ["https://o.example/a"]
    assert store.articles.search("narwhal OR quokka") == []
    assert store.outbox.depth() == 1

    # Even a one-day setting keeps what a digest or catch-up may still need (a week).
    result = prune(store.db, days=1, now=now)
    assert store.articles.by_url("https://o.example/f") is not None
    store.db.execute("INSERT INTO articles_fts(articles_fts) VALUES('integrity-check')")
    note = json.loads(store.meta.get(LAST_RUN_KEY) or "{}")
    assert note["articles"] == result.articles
    store.close()


# --- two processes on one store --------------------------------------------------------------
@pytest.mark.slow
async def test_a_second_process_does_not_deliver(db_path: Path, tmp_path: Path) -> None:
    empty = tmp_path / "feeds.txt"
    empty.write_text("")
    env = {
        "SW_FEEDS_FILE": str(empty),
        "SW_LOAD_STARTER": "false",
        "SW_POLL_SECONDS": "2",
        "SW_HEARTBEAT_SECONDS": "0.2",
        "SW_HTTP_PORT": "0",
        "SW_LOG_LEVEL": "INFO",
    }
    store = Store(open_database(db_path))
    store.subscriptions.add(CONSOLE_TARGET, SubscriptionSpec())
    store.close()
    first = await BotProcess.start(db_path, "run", **env)
    second: BotProcess | None = None
    try:
        await first.port()
        second = await BotProcess.start(db_path, "run", **env)
        await second.port()
        await _until(
            lambda: any("another process delivers" in e.get("msg", "") for e in second.logs())
        )
        code, out, _ = await _cli(db_path, "status", SW_FEEDS_FILE=str(empty))
        assert code == 0
        assert out.count("process: pid") == 2
        assert f"process: pid {first.proc.pid}" in out and ", delivers" in out
        assert f"pid {second.proc.pid}" in out and "not delivering" in out

        feed = tmp_path / "one.xml"
        feed.write_bytes(make_rss("Ops Wire", ITEMS[:1]))
        assert (await _cli(db_path, "ingest", str(feed)))[0] == 0
        await _until(lambda: "sovereign AI foundation model teams" in first.out, 30)
        await asyncio.sleep(2)
        assert "sovereign AI foundation model teams" not in second.out

        # The first dies without a goodbye; the second takes delivery over.
        first.proc.send_signal(signal.SIGKILL)
        await first.stop()
        await _until(lambda: any("lock taken over" in e.get("msg", "") for e in second.logs()), 30)
        feed.write_bytes(make_rss("Ops Wire", ITEMS[1:2]))
        assert (await _cli(db_path, "ingest", str(feed)))[0] == 0
        await _until(lambda: "GENIAC" in second.out, 30)
        assert first.out.count("sovereign AI foundation model teams") == 1
        assert "GENIAC" not in first.out
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
    rows = _outbox_rows(db_path)
    assert [state for _, state in rows] == ["sent", "sent"]


# --- a busy store, a damaged store ------------------------------------------------------------
@pytest.mark.slow
async def test_a_ten_second_write_lock_means_waiting_not_a_crash(
    db_path: Path, tmp_path: Path
) -> None:
    store = Store(open_database(db_path))
    store.close()
    feed = tmp_path / "feed.xml"
    feed.write_bytes(FEED)
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO meta(key, value) VALUES ('holder', '1')")
        held.set()
        time.sleep(10)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    code, out, err = await _cli(db_path, "ingest", "--json", str(feed))
    waited = time.monotonic() - started
    holder.join()
    assert code == 0, err
    assert json.loads(out)["new"] == 3
    assert waited >= 8, waited  # it waited for the lock to go...
    assert "locked" not in err  # ...and never gave up


async def test_a_damaged_store_names_its_last_backup(db_path: Path, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(FEED)
    assert (await _cli(db_path, "ingest", str(feed)))[0] == 0
    backup = tmp_path / "nightly.db"
    assert (await _cli(db_path, "backup", str(backup)))[0] == 0
    with db_path.open("r+b") as fh:  # scribble over the schema page after the file header
        fh.seek(100)
        fh.write(os.urandom(3000))
    code, _, err = await _cli(db_path, "ask", QUESTION)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(db_path) in lines[0] and str(backup.resolve()) in lines[0]
    assert "Traceback" not in err

    db_path.write_bytes(b"this is not a database at all" * 10)
    code, _, err = await _cli(db_path, "status")
    assert code == 2 and str(backup.resolve()) in err


# --- operators in chat ----------------------------------------------------------------------
async def test_status_is_for_operators_only(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, feeds: tuple[FeedServer, Path]
) -> None:
    _server, listing = feeds
    app = await _started(monkeypatch, db_path, listing)
    try:
        stranger = await app.service.handle_text(Target("telegram", "-5"), "42", "/status")
        assert stranger is not None and "operators" in stranger.text
        app.service.owner_ids = frozenset({"42"})
        owner = await app.service.handle_text(Target("telegram", "-5"), "42", "/status")
        assert owner is not None and "feeds: 1 (1 never polled)" in owner.text
        console = await app.service.handle_text(CONSOLE_TARGET, "console", "/status")
        assert console is not None and "outbox: 0 queued" in console.text
    finally:
        app.close()


async def test_a_taken_port_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, feeds: tuple[FeedServer, Path]
) -> None:
    _server, listing = feeds
    app = await _started(monkeypatch, db_path, listing)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ops = app.operations()
        ops.config = replace(ops.config, http_port=taken.getsockname()[1])
        try:
            with pytest.raises(SovereignWatchError, match=r"cannot serve /healthz on 127\.0\.0\.1"):
                await ops.start(asyncio.Event())
        finally:
            await ops.close()
            app.close()
