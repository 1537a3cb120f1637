"""Open the SQLite store: refuse what is not ours, then WAL, busy timeout, migrations."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from bot.core.errors import StoreError
from storage.backup import backup_hint
from storage.migrations import KNOWN, migrations

log = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000


def _check_file(path: Path) -> None:
    """Fail before SQLite touches a file that is not a database or cannot be written."""
    if path.is_dir():
        raise StoreError(f"store path {path} is a directory, not a SQLite file")
    if path.exists():
        with path.open("rb") as fh:
            head = fh.read(16)
        if head and head != _SQLITE_MAGIC:
            raise StoreError(
                f"store file {path} is not a SQLite database; refusing to touch it. "
                + backup_hint(path)
            )
        if not os.access(path, os.W_OK):
            raise StoreError(f"store file {path} is read-only; the bot needs to write to it")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise StoreError(f"store folder {parent} is read-only; SQLite needs it for its WAL files")


def open_database(path: Path | str, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the store at `path` and bring its schema up to date."""
    path = Path(path)
    if str(path) != ":memory:":
        _check_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {path.parent}: {exc}") from None
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        db = Database(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the store {path}: {exc}. {backup_hint(path)}") from None
    if migrate:
        apply_migrations(db, path)
    return db


def apply_migrations(db: Database, path: Path | str = "store") -> None:
    """Apply pending migrations; refuse a store written by a newer release."""
    try:
        applied = [m.name for m in migrations.applied(db)]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read the store {path}: {exc}. {backup_hint(path)}") from None
    unknown = [name for name in applied if name not in KNOWN]
    if unknown:
        raise StoreError(
            f"the store {path} has schema version {unknown[-1]!r}, newer than this release "
            f"knows ({KNOWN[-1]!r}); upgrade sovereign-watch or point SW_DB_PATH elsewhere"
        )
    pending = [m.name for m in migrations.pending(db)]
    if pending:
        try:
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot migrate the store {path}: {exc}") from None
        log.info("store migrated", extra={"applied": pending, "path": str(path)})
