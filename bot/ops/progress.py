"""Progress for long work: a bar on a terminal, a few plain log lines anywhere else.

A bar in a log file or a CI transcript is noise (carriage returns, hundreds of redraws), so
without a terminal the same calls write one log line per tenth of the work, and at the end.
Either way it goes to stderr, never stdout, which stays clean for `--json` output.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any, TextIO

log = logging.getLogger(__name__)

LOG_STEP = 0.1  # share of the work between two log lines
LOG_EVERY = 30.0  # seconds: a line at least this often when the total is unknown or slow


class Progress:
    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        stream: TextIO | None = None,
        bar: bool | None = None,
        min_total: int = 2,
        clock: Any = time.monotonic,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.done = 0
        self.clock = clock
        self._started = clock()
        self._logged_at = self._started
        self._logged_share = 0.0
        out = stream if stream is not None else sys.stderr
        # A single item is not "long work": no bar, no lines.
        self.quiet = total is not None and total < min_total
        use_bar = not self.quiet and (bar if bar is not None else _is_terminal(out))
        self._bar: Any = None
        if use_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=out, leave=False)

    @property
    def uses_bar(self) -> bool:
        return self._bar is not None

    def set_total(self, total: int) -> None:
        """The size became known after starting (e.g. pages of a database being copied)."""
        self.total = total
        self.quiet = False
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.quiet:
            return
        now = self.clock()
        share = self.done / self.total if self.total else 0.0
        if share - self._logged_share >= LOG_STEP or now - self._logged_at >= LOG_EVERY:
            self._log(now)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self.quiet and self.done and (self.total is None or self._logged_share < 1.0):
            self._log(self.clock())

    def _log(self, now: float) -> None:
        self._logged_at = now
        self._logged_share = self.done / self.total if self.total else 0.0
        of = f"/{self.total}" if self.total else ""
        log.info(
            f"{self.desc}: {self.done}{of} {self.unit}",
            extra={
                "done": self.done,
                "total": self.total,
                "seconds": round(now - self._started, 1),
            },
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress(total: int | None, desc: str, *, unit: str = "it") -> Progress:
    """A progress reporter on stderr: `with progress(n, "ingesting") as p: ... p.update()`."""
    return Progress(total, desc, unit=unit)
