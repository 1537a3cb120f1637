"""JSON-lines logging on stderr, with every configured secret scrubbed from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
# Bot API URLs carry the token in the path (`/bot123:ABC/getMe`): scrub the shape even when the
# token was not configured through Settings (e.g. a library logs a URL we never saw).
_TELEGRAM_TOKEN_RE = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
_BEARER_RE = re.compile(r"(?i)(bearer|bot)\s+[A-Za-z0-9._\-]{20,}")
_OPENAI_KEY_RE = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}\b")


class Redactor:
    """Replaces known secrets and secret-shaped strings with a placeholder."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[REDACTED]")
        text = _TELEGRAM_TOKEN_RE.sub("[REDACTED]", text)
        text = _OPENAI_KEY_RE.sub("[REDACTED]", text)
        return _BEARER_RE.sub(lambda m: f"{m.group(1)} [REDACTED]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and any `extra=` fields."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(payload, ensure_ascii=False, default=str))


def setup_logging(
    level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Route every logger to JSON lines on stderr; quiet the chatty HTTP libraries."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(Redactor(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and Telegram's URLs hold the bot token.
    for noisy in (
        "httpx",
        "httpcore",
        "hpack",
        "openai._base_client",
        "discord.gateway",
        "discord.http",
        "aiohttp.access",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
