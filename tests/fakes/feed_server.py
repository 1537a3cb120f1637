"""A real HTTP feed server on 127.0.0.1 for tests and benchmarks.

Tests publish feeds with `set_feed` and also get a set of misbehaving routes (slow drip,
huge bodies, redirect loops, error statuses, flaky, HTML, gzip). The server counts what it
saw and sent so tests can assert on the server side, not only on what the client reports.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal
from xml.sax.saxutils import escape

from aiohttp import web

from tests.fakes.local_server import LocalServer, serve_locally

__all__ = ["HUGE_SIZE", "SAMPLE_RSS", "FeedServer", "feed_server", "make_rss"]

HUGE_SIZE = 30 * 1024 * 1024
_CHUNK = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_rss(title: str, items: Sequence[tuple[str, str, str]]) -> bytes:
    """Build a small valid RSS 2.0 document from (title, link, description) triples."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>http://example.invalid/</link>",
        "<description>Test feed</description>",
    ]
    for item_title, link, description in items:
        parts.append(
            f"<item><title>{escape(item_title)}</title><link>{escape(link)}</link>"
            f"<guid>{escape(link)}</guid><description>{escape(description)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


SAMPLE_RSS = make_rss(
    "Sample feed",
    [
        (
            f"Sample item {i}",
            f"http://example.invalid/items/{i}",
            "A placeholder paragraph that repeats so the gzip route has something to squeeze. " * 4,
        )
        for i in range(1, 6)
    ],
)

_HTML = b"<!doctype html><html><head><title>Not a feed</title></head><body>Hello</body></html>"


@dataclass
class _Feed:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: datetime | None
    delay: float


def _etag_matches(header: str, etag: str) -> bool:
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _not_modified_since(header: str, last_modified: datetime) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified <= since


class FeedServer(LocalServer):
    """Local feed server; `async with FeedServer() as server:` or start()/stop()."""

    def __init__(self, *, flaky_failures: int = 2, slow_seconds: int = 60) -> None:
        self.flaky_failures = flaky_failures
        self.slow_seconds = slow_seconds
        self.requests: Counter[str] = Counter()
        self.request_headers: list[tuple[str, dict[str, str]]] = []
        self.bytes_sent = 0
        self.unconditional_requests = 0
        self.max_in_flight = 0
        self.max_in_flight_per_host: Counter[str] = Counter()
        self._in_flight = 0
        self._in_flight_per_host: Counter[str] = Counter()
        self._feeds: dict[str, _Feed] = {}
        self._flaky_seen = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._count])
        app.router.add_route("GET", "/{tail:.*}", self._dispatch)
        # handler_cancellation stops drip handlers as soon as the client hangs up.
        self._runner, self.port = await serve_locally(app, cancel_on_hangup=True)
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self.base_url

    def url(self, path: str) -> str:
        return f"{self.base_url}{path if path.startswith('/') else '/' + path}"

    def reset_counters(self) -> None:
        self.requests.clear()
        self.request_headers.clear()
        self.bytes_sent = 0
        self.unconditional_requests = 0
        self.max_in_flight = 0
        self.max_in_flight_per_host.clear()

    # -- publishing ------------------------------------------------------------------------

    def set_feed(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/rss+xml",
        etag: str | None = "auto",
        *,
        last_modified: datetime | Literal["auto"] | None = "auto",
        delay: float = 0.0,
    ) -> None:
        """Publish `body` at `path`; "auto" validators change whenever the body changes."""
        path = path if path.startswith("/") else "/" + path
        previous = self._feeds.get(path)
        if etag == "auto":
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if last_modified == "auto":
            last_modified = datetime.now(UTC).replace(microsecond=0)
            if previous is not None and previous.last_modified is not None:
                if previous.body == body:
                    last_modified = previous.last_modified
                elif last_modified <= previous.last_modified:
                    # HTTP dates have one-second resolution: keep them strictly increasing.
                    last_modified = previous.last_modified + timedelta(seconds=1)
        self._feeds[path] = _Feed(body, content_type, etag, last_modified, delay)

    # -- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.host
        self.requests[request.path] += 1
        self.request_headers.append((request.path_qs, dict(request.headers)))
        self._in_flight += 1
        self._in_flight_per_host[host] += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        self.max_in_flight_per_host[host] = max(
            self.max_in_flight_per_host[host], self._in_flight_per_host[host]
        )
        try:
            return await handler(request)
        finally:
            self._in_flight -= 1
            self._in_flight_per_host[host] -= 1

    def _respond(
        self, body: bytes, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.bytes_sent += len(body)
        return web.Response(body=body, status=status, headers=headers)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        feed = self._feeds.get(path)
        if feed is not None:
            return await self._serve_feed(request, feed)
        parts = path.strip("/").split("/")
        head = parts[0]
        if head == "slow":
            return await self._stream(request, SAMPLE_RSS, per_byte_delay=1.0)
        if head == "huge":
            return await self._stream(request, None, content_length=False)
        if head == "huge-cl":
            return await self._stream(request, None, content_length=True)
        if head == "redirect-loop":
            raise web.HTTPFound("/redirect-loop")
        if head == "redirect" and len(parts) == 2 and parts[1].isdigit():
            remaining = int(parts[1])
            if remaining > 0:
                raise web.HTTPFound(f"/redirect/{remaining - 1}")
            return self._respond(SAMPLE_RSS, headers={"Content-Type": "application/rss+xml"})
        if head == "redirect-to" and "url" in request.query:
            raise web.HTTPFound(request.query["url"])
        if head == "status" and len(parts) == 2 and parts[1].isdigit():
            return self._respond(b"error page", status=int(parts[1]))
        if head == "flaky":
            self._flaky_seen += 1
            if self._flaky_seen <= self.flaky_failures:
                return self._respond(b"try later", status=500)
            return self._respond(SAMPLE_RSS, headers={"Content-Type": "application/rss+xml"})
        if head == "html":
            return self._respond(_HTML, headers={"Content-Type": "text/html; charset=utf-8"})
        if head == "gzip":
            return self._respond(
                gzip.compress(SAMPLE_RSS),
                headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
            )
        return self._respond(b"not found", status=404)

    async def _serve_feed(self, request: web.Request, feed: _Feed) -> web.StreamResponse:
        if feed.delay:
            await asyncio.sleep(feed.delay)
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        if inm is None and ims is None:
            self.unconditional_requests += 1
        headers: dict[str, str] = {"Content-Type": feed.content_type}
        if feed.etag is not None:
            headers["ETag"] = feed.etag
        if feed.last_modified is not None:
            headers["Last-Modified"] = format_datetime(feed.last_modified, usegmt=True)
        # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since when both are sent.
        if inm is not None:
            fresh = feed.etag is not None and _etag_matches(inm, feed.etag)
        else:
            fresh = (
                ims is not None
                and feed.last_modified is not None
                and _not_modified_since(ims, feed.last_modified)
            )
        if fresh:
            headers.pop("Content-Type")
            return web.Response(status=304, headers=headers)
        return self._respond(feed.body, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        body: bytes | None,
        *,
        per_byte_delay: float = 0.0,
        content_length: bool = False,
    ) -> web.StreamResponse:
        """Drip `body` byte by byte, or (body None) stream HUGE_SIZE bytes of padding."""
        resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        if body is None and content_length:
            resp.content_length = HUGE_SIZE
        await resp.prepare(request)
        try:
            if body is not None:
                for i in range(min(len(body), self.slow_seconds)):
                    await resp.write(body[i : i + 1])
                    self.bytes_sent += 1
                    await asyncio.sleep(per_byte_delay)
            else:
                start = b'<?xml version="1.0"?><rss version="2.0"><channel><!-- '
                await resp.write(start)
                self.bytes_sent += len(start)
                sent = len(start)
                pad = b" " * _CHUNK
                while sent < HUGE_SIZE:
                    piece = pad[: HUGE_SIZE - sent]
                    await resp.write(piece)
                    self.bytes_sent += len(piece)
                    sent += len(piece)
            await resp.write_eof()
        except ConnectionError:
            pass  # the client hung up, which is what these routes exist to provoke
        return resp


async def feed_server() -> AsyncIterator[FeedServer]:
    """Fixture body: `feed_server = pytest_asyncio.fixture(feed_server)` in a conftest."""
    async with FeedServer() as server:
        yield server
