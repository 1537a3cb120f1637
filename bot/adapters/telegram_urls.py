"""TELEGRAM_API_BASE_URL in either form (`http://host:8081` or `http://host:8081/bot`)."""

from __future__ import annotations


def api_base_urls(base: str | None) -> tuple[str, str] | None:
    """PTB's base_url and base_file_url for TELEGRAM_API_BASE_URL; PTB appends the token."""
    if not base:
        return None
    root = base.strip().rstrip("/")
    if root.endswith("/bot"):
        root = root[: -len("/bot")]
    return f"{root}/bot", f"{root}/file/bot"
