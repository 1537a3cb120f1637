"""One deliverer per store: an OS file lock beside the database.

A second process pointed at the same store refuses to deliver while the first holds the
lock, so no alert goes out twice. The kernel drops the lock the moment its holder dies (even
by SIGKILL or OOM), so there is no stale lock to clean up and no clock to trust; a waiting
process takes over delivery as soon as the first one is gone. The delivery worker's lease in
the store stays as a second guard (e.g. for two hosts on a network filesystem).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def lock_path_for(db_path: Path | str) -> Path | None:
    """Where the delivery lock of a store lives (None for an in-memory store)."""
    if str(db_path) == ":memory:":
        return None
    path = Path(db_path)
    return path.with_name(path.name + ".delivery-lock")


class DeliveryLock:
    def __init__(self, db_path: Path | str) -> None:
        self.path = lock_path_for(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self.path is None

    def acquire(self) -> bool:
        """Take the lock if free; never waits. True when this process now holds it."""
        if self.held:
            return True
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # who holds it is only a note for operators
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> str | None:
        """Who holds the lock, as written by the holder (None when nobody or unknown)."""
        if self.path is None or self._fd is not None:
            return None
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        return text or None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    async def wait(self, stop: asyncio.Event, every: float = 2.0) -> bool:
        """Wait until the lock is ours (True) or `stop` is set (False)."""
        warned = False
        while not stop.is_set():
            if self.acquire():
                if warned:
                    log.warning("delivery lock taken over; this process delivers now")
                return True
            if not warned:
                log.warning(
                    "another process delivers from this store; this one will not deliver "
                    "while it runs",
                    extra={"holder": self.holder() or "unknown", "lock": str(self.path)},
                )
                warned = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
        return False

    def __enter__(self) -> DeliveryLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
