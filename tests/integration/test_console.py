"""The console chat and `ask` end to end, as a user runs them: the real process, a real store."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import cli_env, run_cli

KOREA_Q = "What is South Korea doing to build its own AI model?"


def test_piped_session_answers_and_handles_commands(db_path: Path) -> None:
    script = (
        "\n".join(
            [
                KOREA_Q,
                "/help",
                "/subscribe KR topic:compute",
                "/subscribe Narnia",
                "/subscriptions",
                "/frobnicate",
                "/ask",
                "/quit",
                "this line is never read",
            ]
        )
        + "\n"
    )
    proc = run_cli([], db_path, stdin=script)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "https://" in out  # the answer cites at least one source URL
    assert "Sources:" in out
    assert "/subscribe" in out and "/latest" in out  # help
    assert "Subscribed (#1)" in out and "South Korea" in out
    assert "unknown country 'Narnia'" in out
    assert "#1:" in out  # /subscriptions lists it
    assert "I don't know the command /frobnicate" in out
    assert "Ask me something" in out  # empty /ask
    assert "never read" not in out
    assert ">" not in out.splitlines()[0]  # no prompt noise when piped


def test_ask_json_shape_and_grounding(db_path: Path) -> None:
    proc = run_cli(["ask", "--json", KOREA_Q], db_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"answer", "grounded", "mode", "sources"}
    assert result["grounded"] is True
    assert result["mode"] == "extractive"
    assert 0 < len(result["answer"]) <= 600
    assert result["sources"] and result["sources"][0]["url"].startswith("https://")
    assert set(result["sources"][0]) == {"title", "url", "published"}
    assert "[1]" in result["answer"]


def test_unknown_question_says_it_does_not_know(db_path: Path) -> None:
    proc = run_cli(["ask", "--json", "What is the recipe for Kimchi stew with tuna?"], db_path)
    result = json.loads(proc.stdout)
    assert result["grounded"] is False
    assert "don't know" in result["answer"]


def test_korean_question_gets_korean_framing(db_path: Path) -> None:
    proc = run_cli(["ask", "--json", "화성 식민지 건설 예산은 얼마인가요?"], db_path)
    result = json.loads(proc.stdout)
    assert result["grounded"] is False
    assert "모르겠습니다" in result["answer"]


def test_interactive_session_in_a_terminal(db_path: Path) -> None:
    """A person at a terminal: banner, prompt, answer, Ctrl-D leaves with exit 0."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        stdin=child,
        stdout=child,
        stderr=subprocess.PIPE,
        env=cli_env(db_path),
        cwd=db_path.parent.parent,
    )
    os.close(child)
    out = b""

    def read_until(marker: bytes, timeout: float = 60) -> bytes:
        nonlocal out
        end = time.monotonic() + timeout
        while marker not in out and time.monotonic() < end:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    out += os.read(main, 65536)
                except OSError:
                    break
        return out

    try:
        assert b"/help" in read_until(b"> ")
        os.write(main, (KOREA_Q + "\n").encode())
        assert b"https://" in read_until(b"https://")
        os.write(main, b"\x04")  # Ctrl-D
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)


def test_sigterm_exits_cleanly(db_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(db_path),
        cwd=db_path.parent.parent,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"/help\n")
    proc.stdin.flush()
    assert proc.stdout is not None
    proc.stdout.readline()  # the bot is up and answering
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    # The store is consistent afterwards: another command opens it fine.
    assert run_cli(["status"], db_path).returncode == 0


def test_version(db_path: Path) -> None:
    proc = run_cli(["--version"], db_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("sovereign-watch ")


def test_bad_usage_exits_2_with_one_line(db_path: Path) -> None:
    proc = run_cli(["export", "--since", "yesterday-ish"], db_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli(["no-such-command"], db_path)
    assert proc.returncode == 2
