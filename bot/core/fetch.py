"""Polite, bounded HTTP fetching of feeds.

Every fetch is conditional when the caller has validators, capped in time and size, follows
redirects by hand so each hop passes the address guard, and turns every failure into one
FeedError subclass so the polling loop can log it and move on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict
from yarl import URL

from bot.core.errors import (
    BlockedAddress,
    BodyTooLarge,
    FeedError,
    FetchTimeout,
    HttpStatusError,
    TooManyRedirects,
)
from bot.core.netguard import (
    AddressPredicate,
    GuardedResolver,
    check_literal_host,
    is_public_address,
    looks_like_numeric_host,
)

__all__ = ["DEFAULT_LIMITS", "FeedFetcher", "FetchLimits", "FetchRequest", "FetchResult"]

logger = logging.getLogger(__name__)

FetchRequest = tuple[str, str | None, str | None]
"""(url, etag, last_modified) as stored from the previous successful fetch."""

_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True)
class FetchResult:
    """One successful answer; on 304 the body is empty and callers keep what they stored.

    `etag`/`last_modified` are the server's new validators, or the ones sent when a 304
    did not repeat them, so callers can always store what they get back.
    """

    url: str
    final_url: str
    status: int
    not_modified: bool
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    elapsed: float
    bytes_read: int


@dataclass(frozen=True)
class FetchLimits:
    """Per-fetch budgets; defaults suit a few hundred public feeds polled every few minutes."""

    connect_timeout: float = 10.0
    total_timeout: float = 30.0
    max_bytes: int = 10 * _MIB
    max_redirects: int = 5
    allow_private: bool = False
    user_agent: str = "SovereignWatch/0.1 (+https://github.com/sovereign-watch)"
    concurrency: int = 4


DEFAULT_LIMITS = FetchLimits()


def _size_text(n: int) -> str:
    if n >= _MIB and n % _MIB == 0:
        return f"{n // _MIB} MB"
    return f"{n} bytes"


def _parse_url(url: str) -> URL:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise FeedError(f"unsupported URL {url!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise FeedError(f"unsupported URL {url!r}")
    return parsed


def _resolve_location(current: URL, location: str) -> URL:
    try:
        target = current.join(URL(location))
    except (ValueError, TypeError) as exc:
        raise FeedError(f"unsupported URL {location!r} in redirect") from exc
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise FeedError(f"unsupported URL {location!r} in redirect")
    return target.with_fragment(None)


def _find_blocked(exc: BaseException) -> BlockedAddress | None:
    """Find a guard refusal that aiohttp may have wrapped in its own connector errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BlockedAddress):
            return current
        seen.add(id(current))
        nested = getattr(current, "os_error", None)
        if isinstance(nested, BlockedAddress):
            return nested
        current = current.__cause__ or current.__context__
    return None


def _map_client_error(exc: BaseException) -> FeedError:
    if isinstance(exc, aiohttp.InvalidURL):
        return FeedError(f"unsupported URL {exc}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FeedError(f"connection failed: cannot resolve {exc.host}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        detail = exc.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return FeedError(f"connection failed: {exc.host}:{exc.port}: {detail}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FeedError(f"broken response body: {exc}")
    return FeedError(f"connection failed: {exc or type(exc).__name__}")


def _log_failure(url: str, err: FeedError) -> None:
    logger.warning(
        "feed fetch failed: %s: %s",
        url,
        err.reason,
        extra={"feed_url": url, "reason": err.reason, "error": type(err).__name__},
    )


class FeedFetcher:
    """Owns one HTTP session; use as `async with FeedFetcher(limits) as f: await f.fetch(url)`.

    `is_allowed` replaces the public-address rule (tests use it to admit 127.0.0.1 while
    still refusing other addresses); `resolver` replaces the DNS resolver the guard wraps.
    Both are ignored for the guard when `limits.allow_private` is true.
    """

    def __init__(
        self,
        limits: FetchLimits = DEFAULT_LIMITS,
        *,
        is_allowed: AddressPredicate | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._limits = limits
        self._guard: AddressPredicate | None = (
            None if limits.allow_private else (is_allowed or is_public_address)
        )
        self._inner_resolver = resolver
        self._resolver: AbstractResolver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(max(1, limits.concurrency))
        self._host_locks: dict[str, asyncio.Lock] = {}

    @property
    def limits(self) -> FetchLimits:
        return self._limits

    async def __aenter__(self) -> FeedFetcher:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        if session is not None:
            await session.close()
        if resolver is not None:
            await resolver.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._guard is not None:
            self._resolver = GuardedResolver(self._inner_resolver, is_allowed=self._guard)
        else:
            self._resolver = self._inner_resolver
        connector = aiohttp.TCPConnector(
            resolver=self._resolver,
            limit=max(8, 2 * self._limits.concurrency),
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Feeds are read anonymously; a shared jar would leak one site's cookies into logs.
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={
                "User-Agent": self._limits.user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
            trust_env=False,
        )
        return self._session

    def _host_lock(self, url: URL) -> asyncio.Lock:
        key = (url.host or url.raw_host or "").lower()
        lock = self._host_locks.get(key)
        if lock is None:
            lock = self._host_locks[key] = asyncio.Lock()
        return lock

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch one feed; raises a FeedError subclass (already logged) on any failure.

        Only the first host is serialised: redirect targets elsewhere are rare enough that
        holding a second lock (and risking lock-order deadlocks) is not worth it.
        """
        try:
            target = _parse_url(url)
            async with self._host_lock(target), self._semaphore:
                return await self._fetch_with_deadline(url, target, etag, last_modified)
        except FeedError as err:
            _log_failure(url, err)
            raise

    async def fetch_many(self, requests: Sequence[FetchRequest]) -> list[FetchResult | FeedError]:
        """Fetch many feeds politely; results keep input order and one bad feed never raises."""

        async def one(request: FetchRequest) -> FetchResult | FeedError:
            url, etag, last_modified = request
            try:
                return await self.fetch(url, etag=etag, last_modified=last_modified)
            except FeedError as err:
                # Callers keep these around; a traceback would pin frames and responses.
                return err.with_traceback(None)
            except Exception as exc:  # a bug must not take the other feeds down with it
                logger.exception(
                    "unexpected error fetching %s",
                    url,
                    extra={"feed_url": url, "reason": type(exc).__name__},
                )
                return FeedError(f"unexpected error: {type(exc).__name__}")

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _fetch_with_deadline(
        self, url: str, target: URL, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        limits = self._limits
        try:
            # One deadline across all hops and the whole body, so a slow drip cannot outlast it.
            async with asyncio.timeout(limits.total_timeout):
                return await self._follow(url, target, etag, last_modified)
        except aiohttp.ConnectionTimeoutError as exc:
            raise FetchTimeout(f"timed out after {limits.connect_timeout:g}s (connect)") from exc
        except TimeoutError as exc:
            raise FetchTimeout(f"timed out after {limits.total_timeout:g}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            blocked = _find_blocked(exc)
            if blocked is not None:
                raise blocked from None  # the guard's own refusal; the wrapper adds nothing
            raise _map_client_error(exc) from exc

    def _check_host(self, url: URL) -> None:
        host = url.raw_host or ""
        if looks_like_numeric_host(host) and not _is_dotted_quad(host):
            # getaddrinfo would map 2130706433 or 127.1 onto an address behind our back.
            raise FeedError(f"unsupported URL {str(url)!r} (non-canonical IP address)")
        if self._guard is not None:
            # aiohttp dials IP literals without asking the resolver, so judge them here.
            check_literal_host(host, self._guard)

    async def _follow(
        self, url: str, target: URL, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        limits = self._limits
        session = self._open()
        headers: CIMultiDict[str] = CIMultiDict()
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        timeout = aiohttp.ClientTimeout(
            total=limits.total_timeout,
            connect=limits.connect_timeout,
            sock_connect=limits.connect_timeout,
        )
        started = time.monotonic()
        current = target
        seen = {str(current)}
        for _hop in range(limits.max_redirects + 1):
            self._check_host(current)
            async with session.get(
                current, headers=headers, allow_redirects=False, timeout=timeout
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECT_STATUSES and location:
                    next_url = _resolve_location(current, location)
                elif resp.status == 304:
                    return FetchResult(
                        url=url,
                        final_url=str(current),
                        status=304,
                        not_modified=True,
                        body=b"",
                        content_type=resp.headers.get("Content-Type"),
                        etag=resp.headers.get("ETag") or etag,
                        last_modified=resp.headers.get("Last-Modified") or last_modified,
                        elapsed=time.monotonic() - started,
                        bytes_read=0,
                    )
                elif resp.status >= 300 or resp.status < 200:
                    resp.close()
                    raise HttpStatusError(f"HTTP {resp.status}", status=resp.status)
                else:
                    body, wire_bytes = await self._read_capped(resp)
                    return FetchResult(
                        url=url,
                        final_url=str(current),
                        status=resp.status,
                        not_modified=False,
                        body=body,
                        content_type=resp.headers.get("Content-Type"),
                        etag=resp.headers.get("ETag"),
                        last_modified=resp.headers.get("Last-Modified"),
                        elapsed=time.monotonic() - started,
                        bytes_read=wire_bytes,
                    )
            if str(next_url) in seen:
                raise TooManyRedirects(f"redirect loop at {next_url}")
            seen.add(str(next_url))
            current = next_url
        raise TooManyRedirects(f"more than {limits.max_redirects} redirects")

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> tuple[bytes, int]:
        """Stream the body and hang up as soon as it passes the cap, so memory stays flat."""
        cap = self._limits.max_bytes
        too_large = BodyTooLarge(f"body larger than {_size_text(cap)}")
        declared = resp.content_length
        if declared is not None and declared > cap:
            resp.close()
            raise too_large
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            buf += chunk
            if len(buf) > cap:
                buf.clear()  # the traceback keeps this frame alive; do not pin the buffer too
                resp.close()  # drops the connection instead of draining the rest
                raise too_large
        return bytes(buf), resp.content.total_raw_bytes


def _is_dotted_quad(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(
        p.isascii()
        and p.isdigit()
        and len(p) <= 3
        and (p == "0" or not p.startswith("0"))
        and int(p) <= 255
        for p in parts
    )
