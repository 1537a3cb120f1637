"""A scriptable OpenAI-compatible endpoint on 127.0.0.1 for tests and benchmarks.

It speaks just enough of the Chat Completions, Models and Embeddings APIs for the real
`openai` client, and can misbehave on demand (error statuses with Retry-After, a slow first
token, a stream cut mid-way, an error event inside the stream, an empty answer). Every request
body is recorded so tests can check what the bot actually sent, and the server notes when it
wrote each stream's first and last chunk so latency can be measured from the server side.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer, serve_locally

__all__ = ["EMBEDDING_DIMS", "FakeOpenAI", "StreamTiming", "fake_embedding", "first_item_reply"]

EMBEDDING_DIMS = 64
Messages = list[dict[str, Any]]
ReplyFn = Callable[[Messages], str]

_ITEM_RE = re.compile(r"^\[1\]\s*(.+?)(?:\s+—\s+.*)?$", re.MULTILINE)
_PIECE_RE = re.compile(r"\S+\s*|\s+")


def first_item_reply(messages: Messages) -> str:
    """The default model: restate the title of context item [1] and cite it."""
    last = str(messages[-1].get("content", "")) if messages else ""
    found = _ITEM_RE.search(last)
    if not found:
        return "The stored news does not say."
    return f"The stored news reports: {found.group(1).strip()} [1]."


def fake_embedding(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """A deterministic unit vector from a hashed bag of words: same text, same vector."""
    vec = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        slot = int.from_bytes(digest[:3], "big") % dims
        vec[slot] += 1.0 if digest[3] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


@dataclass
class StreamTiming:
    """perf_counter stamps of one streamed answer, taken as the server wrote the chunks."""

    started: float
    first_chunk: float | None = None
    last_chunk: float | None = None
    finished: float | None = None


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: float | None


class FakeOpenAI(LocalServer):
    """`async with FakeOpenAI() as server:` then point the client at `server.base_url`."""

    def __init__(
        self,
        reply: ReplyFn | None = None,
        *,
        model: str = "fake-model",
        chunk_delay: float = 0.0,
        piece_chars: int | None = None,
    ) -> None:
        self.reply: ReplyFn = reply or first_item_reply
        self.model = model
        self.chunk_delay = chunk_delay
        # None: one chunk per word; n: fixed n-character chunks (splits words and markup).
        self.piece_chars = piece_chars
        self.requests: list[dict[str, Any]] = []
        self.timings: list[StreamTiming] = []
        self.statuses: list[int] = []
        self._failures: list[_Failure] = []
        self._first_token_delay = 0.0
        self._cut_after: int | None = None
        self._error_after: int | None = None
        self._empty = False
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.base_url = ""

    # --- behaviour switches -----------------------------------------------------------------
    def fail_next(self, status: int, n: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `n` chat requests with `status` (and Retry-After when given)."""
        self._failures.append(_Failure(status, n, retry_after))

    def delay_first_token(self, seconds: float) -> None:
        """Send headers at once, then wait this long before the first chunk."""
        self._first_token_delay = seconds

    def cut_stream_after(self, n_chunks: int) -> None:
        """Drop the connection after `n_chunks` content chunks, without ending the body."""
        self._cut_after = n_chunks

    def error_event_after(self, n_chunks: int) -> None:
        """Send a `data: {"error": ...}` event after `n_chunks` content chunks."""
        self._error_after = n_chunks

    def empty_answer(self) -> None:
        """Reply with no content at all (a role chunk and a stop chunk)."""
        self._empty = True

    def reset(self) -> None:
        """Back to a well-behaved endpoint; recorded requests are kept."""
        self._failures.clear()
        self._first_token_delay = 0.0
        self._cut_after = self._error_after = None
        self._empty = False

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner, port = await serve_locally(app)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()
        await self._close_runner()

    # --- handlers ---------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}]
        return web.json_response({"object": "list", "data": data})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(t)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", self.model),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        failure = self._take_failure()
        if failure is not None:
            self.statuses.append(failure.status)
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(math.ceil(failure.retry_after))
                headers["retry-after-ms"] = str(int(failure.retry_after * 1000))
            payload = {"error": {"message": "scripted failure", "type": "fake", "code": None}}
            return web.json_response(payload, status=failure.status, headers=headers)
        self.statuses.append(200)
        text = "" if self._empty else self.reply(list(body.get("messages", [])))
        if body.get("stream"):
            return await self._stream(request, text)
        await self._pause(self._first_token_delay)  # a slow model, without streaming
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    def _take_failure(self) -> _Failure | None:
        while self._failures:
            head = self._failures[0]
            if head.remaining <= 0:
                self._failures.pop(0)
                continue
            head.remaining -= 1
            return head
        return None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _stream(self, request: web.Request, text: str) -> web.StreamResponse:
        timing = StreamTiming(started=time.perf_counter())
        self.timings.append(timing)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(self._chunk({"role": "assistant", "content": ""}))
        await self._pause(self._first_token_delay)
        if self._stopping.is_set():
            return resp
        if self.piece_chars:
            step = self.piece_chars
            pieces = [text[i : i + step] for i in range(0, len(text), step)]
        else:
            pieces = _PIECE_RE.findall(text)
        for sent, piece in enumerate(pieces):
            if self._cut_after is not None and sent >= self._cut_after:
                if request.transport is not None:
                    request.transport.abort()
                return resp
            if self._error_after is not None and sent >= self._error_after:
                error = {"error": {"message": "scripted stream error", "type": "server_error"}}
                await resp.write(b"data: " + json.dumps(error).encode() + b"\n\n")
                await resp.write_eof()
                return resp
            if sent:
                await self._pause(self.chunk_delay)
            await resp.write(self._chunk({"content": piece}))
            now = time.perf_counter()
            if timing.first_chunk is None:
                timing.first_chunk = now
            timing.last_chunk = now
        await resp.write(self._chunk({}, finish="stop"))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        timing.finished = time.perf_counter()
        return resp
