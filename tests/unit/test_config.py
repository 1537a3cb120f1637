"""Settings: defaults, parsing, and one-line errors that name the bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.core.errors import UsageError
from tests.conftest import run_cli


def test_defaults_match_the_interface() -> None:
    s = load_settings()
    assert s.db_path == Path("data/sovereign-watch.db")
    assert s.poll_seconds == 300
    assert s.allow_private_feeds is False
    assert s.log_level == "INFO"
    assert s.retention_days == 365
    assert s.telegram_bot_token is None and s.discord_bot_token is None
    assert not s.llm_enabled


def test_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_POLL_SECONDS", "5")
    monkeypatch.setenv("SW_ALLOW_PRIVATE_FEEDS", "true")
    monkeypatch.setenv("SW_OWNER_IDS", "42, 7")
    monkeypatch.setenv("DISCORD_SHARD_IDS", "0,2")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    s = load_settings()
    assert s.poll_seconds == 5
    assert s.allow_private_feeds is True
    assert s.owner_ids == ["42", "7"]
    assert s.discord_shard_ids == [0, 2]
    assert s.llm_enabled


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SW_POLL_SECONDS=17\nSW_LOG_LEVEL=debug\n")
    s = load_settings()
    assert s.poll_seconds == 17
    assert s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SW_POLL_SECONDS", "abc"),
        ("SW_POLL_SECONDS", "-1"),
        ("SW_LOG_LEVEL", "LOUD"),
        ("SW_ALLOW_PRIVATE_FEEDS", "maybe"),
        ("SW_HTTP_PORT", "99999"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as err:
        load_settings()
    assert name in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_value_stops_startup_with_exit_2(db_path: Path) -> None:
    proc = run_cli(["status"], db_path, SW_POLL_SECONDS="abc")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SW_POLL_SECONDS" in lines[0]
