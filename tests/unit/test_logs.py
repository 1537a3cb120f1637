"""Logs are JSON lines and never carry a token or key, wherever it turns up."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from bot.logs import setup_logging
from tests.conftest import run_cli

TG_TOKEN = "123456789:AAHfakeTokenForTestsOnly_abcdefghijklmn"
DC_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GfakeX.discord-token-for-tests-only"
OPENAI_KEY = "sk-test-0123456789abcdefghijklmnopqrstuv"


def test_secrets_are_scrubbed_from_messages_extras_and_tracebacks() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", [TG_TOKEN, DC_TOKEN, OPENAI_KEY], stream=out)
    log = logging.getLogger("test.secrets")
    log.info("GET https://api.telegram.org/bot%s/getMe", TG_TOKEN)
    log.warning("auth", extra={"header": f"Bot {DC_TOKEN}", "key": OPENAI_KEY})
    try:
        raise RuntimeError(f"failed with key {OPENAI_KEY}")
    except RuntimeError:
        log.exception("boom")
    # A token-shaped string we were never told about is scrubbed too.
    log.info("url https://api.telegram.org/bot987654321:ZZZunknownTokenShape_abcdefghijkl/x")
    text = out.getvalue()
    for secret in (TG_TOKEN, DC_TOKEN, OPENAI_KEY, "987654321:ZZZunknown"):
        assert secret not in text
    lines = text.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= record.keys()
    assert "[REDACTED]" in text
    logging.getLogger().handlers.clear()


def test_the_running_process_never_logs_its_secrets(db_path: Path) -> None:
    proc = run_cli(
        ["--version"],
        db_path,
    )
    assert proc.returncode == 0
    proc = run_cli(
        ["ask", "--json", "What is South Korea doing to build its own AI model?"],
        db_path,
        SW_LOG_LEVEL="DEBUG",
        OPENAI_API_KEY=OPENAI_KEY,
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        TELEGRAM_BOT_TOKEN=TG_TOKEN,
        DISCORD_BOT_TOKEN=DC_TOKEN,
    )
    assert proc.returncode == 0, proc.stderr
    for secret in (TG_TOKEN, DC_TOKEN, OPENAI_KEY):
        assert secret not in proc.stderr
        assert secret not in proc.stdout
    for line in proc.stderr.strip().splitlines():
        json.loads(line)
