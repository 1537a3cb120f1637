"""Online backups with SQLite's backup API, safe while the bot keeps writing.

The copy runs on its own connection inside one read transaction, so it is a consistent
snapshot of a single moment (WAL lets the bot write meanwhile) and never restarts however busy
the store is. It is written beside the target under a temporary name, checked with
`PRAGMA quick_check`, switched to a self-contained rollback-journal file and only then renamed
into place. Where the last backup went is noted in a small file beside the store, so a store
that will not open can point its operator at the copy to restore.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.core.errors import StoreError, UsageError

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".last-backup"
STEP_PAGES = 1024


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class LastBackup:
    path: str
    at: str
    bytes: int


def sidecar_path(db_path: Path | str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def last_backup(db_path: Path | str) -> LastBackup | None:
    """The backup recorded for this store, or None (never raises)."""
    try:
        data = json.loads(sidecar_path(db_path).read_text(encoding="utf-8"))
        return LastBackup(path=str(data["path"]), at=str(data["at"]), bytes=int(data["bytes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def backup_hint(db_path: Path | str) -> str:
    """One sentence for an error message: where the last backup is and how to restore it."""
    last = last_backup(db_path)
    if last is None:
        return "No backup of it is recorded (make them with `sovereign-watch backup PATH`)."
    found = "" if Path(last.path).exists() else " (that file is missing now)"
    return (
        f"The last backup is {last.path}, taken {last.at}{found}; to restore it, stop the bot, "
        f"copy it to {db_path} and delete {db_path}-wal and {db_path}-shm if present."
    )


def backup_database(
    db_path: Path | str,
    dest: Path | str,
    *,
    progress: Callable[[int, int], None] | None = None,
    step_pages: int = STEP_PAGES,
) -> BackupResult:
    """Copy the store at `db_path` to the new file `dest`; `progress(done, total)` in pages."""
    source_path, target = Path(db_path), Path(dest)
    if not source_path.is_file():
        raise StoreError(f"no store at {source_path}")
    if target.exists():
        raise UsageError(f"{target} exists already; choose a new path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {target.parent}: {exc.strerror}") from None
    partial = target.with_name(f".{target.name}.partial")
    started = time.monotonic()
    pages = 0

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total
        if progress is not None:
            progress(total - remaining, total)

    try:
        partial.unlink(missing_ok=True)
        source = sqlite3.connect(str(source_path), timeout=30, isolation_level=None)
        try:
            source.execute("PRAGMA busy_timeout = 30000")
            # One read transaction for the whole copy: a snapshot that writers cannot disturb.
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()
            copy = sqlite3.connect(str(partial), isolation_level=None)
            try:
                source.backup(copy, pages=step_pages, progress=step)
                check = copy.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(
                        f"the copy of {source_path} fails its integrity check ({check}); the "
                        "store itself may be damaged"
                    )
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                copy.close()
        finally:
            source.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {source_path} failed: {exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    size = target.stat().st_size
    _record(source_path, target, size)
    result = BackupResult(target, pages, size, time.monotonic() - started)
    log.info(
        "backup written",
        extra={"path": str(target), "pages": pages, "bytes": size, "seconds": result.seconds},
    )
    return result


def _record(db_path: Path, target: Path, size: int) -> None:
    note = {
        "path": str(target.resolve()),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bytes": size,
    }
    sidecar = sidecar_path(db_path)
    try:
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_text(json.dumps(note) + "\n", encoding="utf-8")
        os.replace(tmp, sidecar)
    except OSError as exc:  # the backup itself is fine; only the note is missing
        log.warning("could not record the backup path", extra={"reason": str(exc)})
