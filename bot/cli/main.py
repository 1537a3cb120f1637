"""Argument parsing and dispatch; exit 0 success, 2 bad usage or input, 1 anything else."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from bot import __version__
from bot.config import Settings, load_settings
from bot.core.errors import SovereignWatchError, StoreError, UsageError
from bot.logs import setup_logging

log = logging.getLogger("bot.cli")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see sovereign-watch --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sovereign-watch", description="A chat bot that follows national AI efforts."
    )
    parser.add_argument("--version", action="version", version=f"sovereign-watch {__version__}")
    parser.add_argument(
        "--console",
        action="store_true",
        help="also open the console chat when platform tokens are set",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="start the adapters, the poller and the delivery worker")
    run.add_argument("--console", action="store_true", dest="run_console")
    ask = sub.add_parser("ask", help="answer one question from the store")
    ask.add_argument("--json", action="store_true")
    ask.add_argument("question", nargs="+")
    ingest = sub.add_parser("ingest", help="ingest feed URLs or files once")
    ingest.add_argument("--json", action="store_true")
    ingest.add_argument("sources", nargs="+", metavar="SOURCE")
    poll = sub.add_parser("poll", help="poll the configured feeds")
    poll.add_argument("--once", action="store_true")
    deliver = sub.add_parser("deliver", help="send what is queued")
    deliver.add_argument("--once", action="store_true")
    export = sub.add_parser("export", help="stored items as JSON lines")
    export.add_argument("--since", metavar="DATE")
    feeds = sub.add_parser("feeds", help="the feed list")
    fsub = feeds.add_subparsers(dest="feeds_command", parser_class=_Parser, required=True)
    fsub.add_parser("list")
    fadd = fsub.add_parser("add")
    fadd.add_argument("url")
    fremove = fsub.add_parser("remove")
    fremove.add_argument("url")
    fimport = fsub.add_parser("import")
    fimport.add_argument("file")
    fsub.add_parser("export")
    subs = sub.add_parser("subs", help="subscriptions, for an operator")
    ssub = subs.add_subparsers(dest="subs_command", parser_class=_Parser, required=True)
    ssub.add_parser("list")
    sub.add_parser("status", help="feed health, outbox depth, adapters")
    backup = sub.add_parser("backup", help="an online backup of the store")
    backup.add_argument("path")
    return parser


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import commands

    command = args.command or "run"
    if command == "run":
        console = bool(getattr(args, "console", False) or getattr(args, "run_console", False))
        return asyncio.run(commands.run(settings, console=console))
    if command == "ask":
        return asyncio.run(commands.ask(settings, " ".join(args.question), as_json=args.json))
    if command == "ingest":
        return asyncio.run(commands.ingest(settings, args.sources, as_json=args.json))
    if command == "poll":
        return asyncio.run(commands.poll(settings, once=args.once))
    if command == "deliver":
        return asyncio.run(commands.deliver(settings, once=args.once))
    if command == "export":
        return commands.export(settings, args.since)
    if command == "feeds":
        return asyncio.run(
            commands.feeds(
                settings,
                args.feeds_command,
                getattr(args, "url", None) or getattr(args, "file", None),
            )
        )
    if command == "subs":
        return commands.subs_list(settings)
    if command == "status":
        return commands.status(settings)
    if command == "backup":
        return commands.backup(settings, args.path)
    raise UsageError(f"unknown command {command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        level = settings.log_level
        chatting = (args.command in (None, "run")) and "SW_LOG_LEVEL" not in os.environ
        if chatting and not (settings.telegram_bot_token or settings.discord_bot_token):
            level = "WARNING"  # keep the terminal chat readable; SW_LOG_LEVEL overrides
        setup_logging(level, settings.secrets())
        return _dispatch(args, settings)
    except (UsageError, StoreError) as exc:
        print(f"sovereign-watch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    except SovereignWatchError as exc:
        print(f"sovereign-watch: {exc}", file=sys.stderr)
        return 1
