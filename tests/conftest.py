"""Shared fixtures: a real SQLite store in a temp folder, a clean environment, the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

_OUR_VARS = (
    "SW_",
    "TELEGRAM_",
    "DISCORD_",
    "OPENAI_",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting leaks in from the developer's shell or a .env in the working directory."""
    for key in list(os.environ):
        if key.startswith(_OUR_VARS):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "sw.db"


def cli_env(db_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_VARS)}
    env.update(
        {"SW_DB_PATH": str(db_path), "SW_ALLOW_PRIVATE_FEEDS": "true", "PYTHONUNBUFFERED": "1"}
    )
    env.update(extra)
    return env


async def run_cli_async(
    db_path: Path, *args: str, timeout: float = 120, **env: str
) -> tuple[int, str, str]:
    """The real entry point in a subprocess, from async tests (which keep fakes running):
    exit code, stdout, stderr. The starter knowledge is off unless SW_LOAD_STARTER says."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(db_path, **{"SW_LOAD_STARTER": "false", **env}),
        cwd=db_path.parent.parent,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


def run_cli(
    args: list[str],
    db_path: Path,
    *,
    stdin: str | None = None,
    timeout: float = 120,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run the real `sovereign-watch` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(db_path, **env),
        cwd=db_path.parent.parent,
    )
