"""Terminal chat: the embedded default adapter, and a printing Sender for alerts.

Works interactively (a prompt) and with piped input (no prompt noise, one reply per line), so
`printf 'question\n/quit\n' | sovereign-watch` is scriptable.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from typing import TextIO

from bot.core.deliver.render import plain_alert, plain_reply
from bot.core.models import AlertMessage, Reply, SendResult, Target
from bot.core.ports import StorePort
from bot.core.service import BotService

CONSOLE_TARGET = Target(platform="console", chat_id="local")
QUIT = {"/quit", "/exit", "/q", "quit", "exit"}


def render(reply: Reply) -> str:
    """Plain text: body, then the numbered sources with their links."""
    lines = []
    if reply.title:
        lines.append(f"== {reply.title} ==")
    lines.append(reply.text)
    if reply.sources and reply.grounded is not False:
        lines.append("")
        lines.append("Sources:")
        for n, src in enumerate(reply.sources, 1):
            meta = ", ".join(x for x in (src.outlet, src.published) if x)
            lines.append(f"[{n}] {src.title}" + (f" ({meta})" if meta else ""))
            lines.append(f"    {src.url}")
    return "\n".join(lines)


async def _lines(stream: TextIO) -> AsyncIterator[str]:
    """Lines of stdin without blocking the event loop (pipes/TTYs async, files directly)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        mode = 0
    if stat.S_ISREG(mode) or not mode:
        for line in stream:
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), stream
    )
    try:
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line longer than the limit: skip it
                continue
            if not raw:
                return
            yield raw.decode("utf-8", errors="replace")
    finally:
        transport.close()


class ConsoleChat:
    def __init__(self, service: BotService, store: StorePort, out: TextIO | None = None) -> None:
        self.service = service
        self.store = store
        self.out = out or sys.stdout
        self.interactive = sys.stdin.isatty() and self.out.isatty()

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def run(self, stop: asyncio.Event) -> None:
        """Chat until /quit, end of input or `stop`."""
        if self.interactive:
            self._print(
                "Sovereign Watch — ask about national AI efforts. /help for commands, "
                "/quit to leave."
            )
            self._prompt()
        async for line in _lines(sys.stdin):
            if stop.is_set():
                break
            text = line.strip()
            if text.lower() in QUIT:
                break
            if text:
                reply = await self.service.handle_text(CONSOLE_TARGET, "console", text)
                if reply is not None:
                    self._print(render(reply))
                    if not self.interactive:
                        self._print("")
            self._prompt()
        stop.set()

    def _prompt(self) -> None:
        if self.interactive:
            self.out.write("\n> ")
            self.out.flush()

    def alert_sender(self) -> ConsoleAlertSender:
        """The console's outbound side for the delivery worker, sharing this chat's output."""
        return ConsoleAlertSender(self.out, after=self._prompt)


class ConsoleAlertSender:
    """Alerts and digests for the console target, printed; edits are not shown."""

    platform = "console"

    def __init__(self, out: TextIO | None = None, after: Callable[[], None] | None = None) -> None:
        self.out = out or sys.stdout
        self.after = after
        self._count = 0

    def _write(self, text: str) -> SendResult:
        self.out.write("\n" + text + "\n")
        self.out.flush()
        if self.after is not None:
            self.after()
        self._count += 1
        return SendResult(str(self._count))

    async def send_alert(self, target: Target, alert: AlertMessage, *, nonce: str) -> SendResult:
        return self._write(plain_alert(alert))

    async def edit_alert(self, target: Target, message_id: str, alert: AlertMessage) -> None:
        return None

    async def send_text(self, target: Target, reply: Reply, *, nonce: str) -> SendResult:
        return self._write(plain_reply(reply))
