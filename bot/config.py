"""The only reader of environment variables (and an optional `.env`): a frozen Settings.

Every variable from INTERFACE.md is parsed here once; a bad value stops start-up with a
one-line message naming the variable, so a typo never turns into odd behaviour later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.errors import UsageError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Runtime configuration; secrets are SecretStr so they never print by accident."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    db_path: Path = Field(Path("./data/sovereign-watch.db"), alias="SW_DB_PATH")
    feeds_file: Path | None = Field(None, alias="SW_FEEDS_FILE")
    poll_seconds: float = Field(300.0, alias="SW_POLL_SECONDS", gt=0)
    allow_private_feeds: bool = Field(False, alias="SW_ALLOW_PRIVATE_FEEDS")
    fetch_timeout_seconds: float = Field(30.0, alias="SW_FETCH_TIMEOUT_SECONDS", gt=0)
    max_feed_bytes: int = Field(10 * 1024 * 1024, alias="SW_MAX_FEED_BYTES", ge=1024)
    log_level: str = Field("INFO", alias="SW_LOG_LEVEL")
    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str | None = Field(None, alias="TELEGRAM_API_BASE_URL")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_paid_broadcast: bool = Field(False, alias="SW_TELEGRAM_PAID_BROADCAST")
    discord_bot_token: SecretStr | None = Field(None, alias="DISCORD_BOT_TOKEN")
    discord_api_base_url: str | None = Field(None, alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(None, alias="DISCORD_GATEWAY_URL")
    discord_shard_count: int | None = Field(None, alias="DISCORD_SHARD_COUNT", ge=1)
    discord_shard_ids: Annotated[list[int] | None, NoDecode] = Field(
        None, alias="DISCORD_SHARD_IDS"
    )
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_model: str = Field("gpt-4o-mini", alias="OPENAI_MODEL")
    llm_timeout_seconds: float = Field(20.0, alias="SW_LLM_TIMEOUT_SECONDS", gt=0)
    llm_refine: bool = Field(False, alias="SW_LLM_REFINE")
    http_port: int | None = Field(None, alias="SW_HTTP_PORT", ge=0, le=65535)
    http_host: str = Field("127.0.0.1", alias="SW_HTTP_HOST", min_length=1)
    heartbeat_seconds: float = Field(15.0, alias="SW_HEARTBEAT_SECONDS", gt=0)
    owner_ids: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="SW_OWNER_IDS")
    retention_days: int = Field(365, alias="SW_RETENTION_DAYS", ge=1)
    load_starter: bool = Field(True, alias="SW_LOAD_STARTER")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: Any) -> Any:
        return _split_csv(value) if value not in ("", None) else None

    @field_validator("owner_ids", mode="before")
    @classmethod
    def _owners(cls, value: Any) -> Any:
        return _split_csv(value) if value is not None else []

    @field_validator(
        "feeds_file",
        "telegram_api_base_url",
        "telegram_webhook_url",
        "discord_api_base_url",
        "discord_gateway_url",
        "openai_base_url",
        "http_port",
        "discord_shard_count",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_bot_token", "discord_bot_token", "openai_api_key", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    def secrets(self) -> list[str]:
        """Every secret value, so the log redactor can scrub them wherever they appear."""
        values = [self.telegram_bot_token, self.discord_bot_token, self.openai_api_key]
        return [v.get_secret_value() for v in values if v and v.get_secret_value()]


def load_settings(env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Read Settings; raise UsageError with one line naming the first bad variable."""
    try:
        found = env_file if env_file and os.path.exists(env_file) else None
        return Settings(_env_file=found, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ("?",)
        name = str(loc[0]).upper()
        raw = os.environ.get(name)
        shown = f"={raw!r}" if raw is not None and "TOKEN" not in name and "KEY" not in name else ""
        raise UsageError(f"invalid setting {name}{shown}: {err.get('msg', 'bad value')}") from None
