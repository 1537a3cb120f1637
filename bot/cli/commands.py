"""What each command does, given Settings; returns the process exit code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.adapters.console import CONSOLE_TARGET, ConsoleAlertSender, ConsoleChat
from bot.app import App, build_app, close_senders, open_senders
from bot.config import Settings
from bot.core.deliver.worker import DeliveryBusy
from bot.core.errors import FeedError, SovereignWatchError, UsageError
from bot.core.feedlist import FeedRef, read_feed_file, to_opml
from bot.core.fetch import FeedFetcher
from bot.core.ingest import Batch, IngestCounts
from bot.core.parse import parse_feed
from bot.core.ports import AlertSender
from bot.core.refine import ingest_refined
from bot.ops.progress import progress

log = logging.getLogger(__name__)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _stop_on_signals() -> asyncio.Event:
    """An event SIGTERM or SIGINT sets, so long-running commands stop cleanly (exit 0)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run(settings: Settings, *, console: bool) -> int:
    """Start every configured adapter plus the poller; the console when no token is set."""
    app = build_app(settings)
    ops = app.operations()
    try:
        app.sync_feed_list()
        stop = _stop_on_signals()
        await ops.start(stop)
        tasks: list[asyncio.Task[None]] = []
        platforms = []
        if settings.telegram_bot_token:
            platforms.append("telegram")
        if settings.discord_bot_token:
            platforms.append("discord")
        senders = await _open_senders(settings)
        chat = None
        if console or not platforms:
            chat = ConsoleChat(app.service, app.store)
            app.store.subscriptions.target_id(CONSOLE_TARGET)
            senders["console"] = chat.alert_sender()
        delivery = app.delivery_worker(senders)
        for name in platforms:
            if name == "discord":
                from bot.adapters.discord_bot import run_discord

                tasks.append(asyncio.create_task(run_discord(app, stop), name="discord"))
            elif name == "telegram":
                from bot.adapters.telegram_bot import run_telegram

                # Replies and alerts share one send budget per chat, so neither earns a 429.
                limiter = delivery.limiters.get("telegram")
                tasks.append(
                    asyncio.create_task(run_telegram(app, stop, limiter=limiter), name="telegram")
                )
        for task in tasks:  # the platform adapters: /healthz wants them alive
            ops.track(task.get_name(), task)
        async with FeedFetcher(app.fetch_limits()) as fetcher:
            tasks.append(asyncio.create_task(app.poller(fetcher).run_forever(stop)))
            quiet = max(900.0, 10 * settings.fetch_timeout_seconds)  # a round's longest fetch
            ops.track("poller", tasks[-1], max_silence=quiet)
            if chat is not None:
                tasks.append(asyncio.create_task(chat.run(stop)))
                ops.track("console", tasks[-1])
            worker = asyncio.create_task(
                ops.deliver(delivery.run_forever, stop)  # one deliverer a store
            )
            ops.track("delivery", worker)
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _finish_worker(worker)
        await close_senders(senders)
        return 0
    finally:
        await ops.close()
        await app.aclose()


async def ask(settings: Settings, question: str, *, as_json: bool) -> int:
    app = build_app(settings)
    try:
        answer = await app.service.answer(question)
    finally:
        await app.aclose()
    if as_json:
        _print_json(
            {
                "answer": answer.answer,
                "grounded": answer.grounded,
                "mode": answer.mode,
                "sources": [
                    {"title": s.title, "url": s.url, "published": s.published}
                    for s in answer.sources
                ],
            }
        )
    else:
        from bot.adapters.console import render
        from bot.core.models import Reply

        print(render(Reply(text=answer.answer, sources=answer.sources, grounded=answer.grounded)))
    return 0


async def _read_one(app: App, fetcher: FeedFetcher, source: str) -> tuple[Batch, str | None]:
    """One source (URL or file) parsed, with its feed row ensured; and the parser's warning."""
    if source.startswith(("http://", "https://")):
        result = await fetcher.fetch(source)
        body, feed_url, ctype = result.body, result.final_url, result.content_type
        kind = "once"
    else:
        path = Path(source)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise FeedError(f"cannot read {source}: {exc.strerror}") from None
        feed_url, ctype, kind = path.resolve().as_uri(), None, "file"
    parsed = parse_feed(body, feed_url=feed_url, content_type=ctype)
    existing = app.store.sources.get(feed_url) or app.store.sources.get(source)
    source_id = (
        existing.id
        if existing
        else app.store.sources.ensure(feed_url, name=parsed.title, kind=kind)
    )
    return Batch(parsed.entries, source_id), parsed.warning


async def ingest(settings: Settings, sources: list[str], *, as_json: bool) -> int:
    """Read every source, then store them together so stories form oldest report first."""
    app = build_app(settings)
    total = IngestCounts()
    batches: list[Batch] = []
    try:
        async with FeedFetcher(app.fetch_limits()) as fetcher:
            with progress(len(sources), "reading", unit="source") as bar:
                for source in sources:
                    try:
                        batch, warning = await _read_one(app, fetcher, source)
                        batches.append(batch)
                        if warning:
                            total.errors.append(f"{source}: {warning}")
                    except FeedError as exc:
                        total.errors.append(f"{source}: {exc.reason}")
                        log.warning("source failed", extra={"source": source, "reason": exc.reason})
                    bar.update()
        for counts in await ingest_refined(app.ingestor, batches, app.refiner):
            total.add(counts)
    finally:
        await app.aclose()
    if as_json:
        _print_json(total.as_dict())
    else:
        print(
            f"fetched {total.fetched}, new {total.new}, relevant {total.relevant}, "
            f"duplicates {total.duplicates}, errors {len(total.errors)}"
        )
        for err in total.errors:
            print(f"  error: {err}")
    return 0


async def poll(settings: Settings, *, once: bool) -> int:
    app = build_app(settings)
    try:
        app.sync_feed_list()
        async with FeedFetcher(app.fetch_limits()) as fetcher:
            poller = app.poller(fetcher)
            if once:
                counts = await poller.poll_once(app.store.sources.all())
                print(
                    f"fetched {counts.fetched}, new {counts.new}, relevant {counts.relevant}, "
                    f"duplicates {counts.duplicates}, errors {len(counts.errors)}"
                )
                for err in counts.errors:
                    print(f"  error: {err}")
                return 0
            stop = _stop_on_signals()
            await poller.run_forever(stop)
            return 0
    finally:
        await app.aclose()


async def _open_senders(settings: Settings) -> dict[str, AlertSender]:
    """Senders for the configured platforms; a failure is one line without secrets in it."""
    try:
        return await open_senders(settings)
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        for secret in settings.secrets():
            reason = reason.replace(secret, "***")
        raise SovereignWatchError(f"cannot start the platform senders: {reason}") from None


async def _finish_worker(worker: asyncio.Task[None], grace: float = 10.0) -> None:
    """Let the worker settle the sends under way after `stop`; cancel it if it lingers."""
    try:
        await asyncio.wait_for(worker, timeout=grace)
    except Exception as exc:  # a timeout or a crash: logged, shutdown goes on
        log.warning("delivery worker did not stop cleanly", extra={"reason": repr(exc)})


async def deliver(settings: Settings, *, once: bool) -> int:
    """Send what is queued: once (including retries due soon), or until SIGTERM."""
    app = build_app(settings, load_starter=False)
    senders: dict[str, AlertSender] = {}
    try:
        senders = await _open_senders(settings)
        senders["console"] = ConsoleAlertSender()
        worker = app.delivery_worker(senders)
        if once:
            try:
                stats = await worker.drain_once()
            except DeliveryBusy as exc:
                raise SovereignWatchError(str(exc)) from None
            print(
                f"sent {stats.sent}, failed {stats.failed}, retried {stats.retried}, "
                f"rate-limited {stats.rate_limited}, edited {stats.edited}; "
                f"outbox: {app.store.outbox.depth()} queued"
            )
            return 0
        stop = _stop_on_signals()
        await worker.run_forever(stop)
        return 0
    finally:
        await close_senders(senders)
        await app.aclose()


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--since wants a date such as 2026-01-31, not {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def export(settings: Settings, since: str | None) -> int:
    when = _parse_since(since)
    app = build_app(settings)
    try:
        for a in app.store.articles.export(when):
            _print_json(
                {
                    "id": a.id,
                    "url": a.url,
                    "title": a.title,
                    "summary": a.summary,
                    "published": a.published.isoformat() if a.published else None,
                    "source": a.source,
                    "lang": a.lang,
                    "relevant": a.relevant,
                    "countries": list(a.countries),
                    "topics": list(a.topics),
                    "story_id": a.story_id,
                }
            )
    finally:
        app.close()
    return 0


async def feeds(settings: Settings, action: str, arg: str | None) -> int:
    app = build_app(settings, load_starter=False)
    try:
        if action != "import" and action != "add":
            app.sync_feed_list()
        sources = app.store.sources
        if action == "list":
            rows = sources.all()
            if not rows:
                print("no feeds")
            for s in rows:
                state = "disabled" if not s.enabled else (s.last_status or "never polled")
                line = f"{s.url}  [{state}]"
                if s.name:
                    line += f"  {s.name}"
                if s.error_count:
                    line += f"  errors={s.error_count}"
                if s.last_error:
                    line += f"  last error: {s.last_error}"
                if s.last_success_at:
                    line += f"  last ok: {s.last_success_at}"
                print(line)
        elif action == "add":
            assert arg is not None
            if not arg.startswith(("http://", "https://")):
                raise UsageError(f"a feed URL starts with http:// or https://, not {arg!r}")
            added = sources.add_feed(arg)
            print(("added " if added else "already on the list: ") + arg)
        elif action == "remove":
            assert arg is not None
            if not sources.remove(arg):
                raise UsageError(f"not on the feed list: {arg}")
            print(f"removed {arg}")
        elif action == "import":
            assert arg is not None
            refs = read_feed_file(Path(arg))
            new_count = 0
            with progress(len(refs), "importing feeds", unit="feed") as bar:
                for ref in refs:
                    if sources.get(ref.url) is None:
                        sources.ensure(ref.url, name=ref.name, kind="feed")
                        new_count += 1
                    bar.update()
            print(f"imported {new_count} new feeds of {len(refs)} in {arg}")
        elif action == "export":
            refs = [FeedRef(s.url, s.name) for s in sources.all()]
            sys.stdout.write(to_opml(refs))
        return 0
    finally:
        await app.aclose()


def subs_list(settings: Settings) -> int:
    app = build_app(settings, load_starter=False)
    try:
        from bot.core.subscribe_parse import describe

        subs = app.store.subscriptions.all()
        if not subs:
            print("no subscriptions")
        for s in subs:
            paused = f"  (paused: {s.paused_reason})" if s.paused else ""
            print(f"#{s.id} {s.target.key}: {describe(s.spec, app.gazetteer)}{paused}")
        return 0
    finally:
        app.close()


def status(settings: Settings) -> int:
    from bot.cli.operations import show_status

    return show_status(settings)


def backup(settings: Settings, path: str) -> int:
    from bot.cli.operations import make_backup

    return make_backup(settings, path)
