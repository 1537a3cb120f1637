"""The fetcher against a real local HTTP server: what an operator sees for each feed failure."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.core.errors import (
    BlockedAddress,
    BodyTooLarge,
    FeedError,
    FetchTimeout,
    HttpStatusError,
    TooManyRedirects,
)
from bot.core.fetch import FeedFetcher, FetchLimits, FetchResult
from bot.core.netguard import is_public_address
from tests.fakes.feed_server import HUGE_SIZE, SAMPLE_RSS, FeedServer, make_rss

MIB = 1024 * 1024
PRIVATE_OK = FetchLimits(allow_private=True, total_timeout=5.0, connect_timeout=2.0)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as feed_server:
        yield feed_server


class MapResolver(AbstractResolver):
    """A stand-in DNS: fixed names to fixed addresses, so tests never leave 127.0.0.1."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        return None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- conditional GET -------------------------------------------------------------------------


async def test_etag_round_trip_gives_304_with_empty_body(server: FeedServer) -> None:
    server.set_feed("/feed.xml", SAMPLE_RSS)
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        first = await fetcher.fetch(server.url("/feed.xml"))
        second = await fetcher.fetch(
            server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified
        )
    assert (first.status, first.not_modified, first.body) == (200, False, SAMPLE_RSS)
    assert first.etag and first.last_modified
    assert first.content_type == "application/rss+xml"
    assert (second.status, second.not_modified, second.body, second.bytes_read) == (
        304,
        True,
        b"",
        0,
    )
    assert second.etag == first.etag
    assert server.requests["/feed.xml"] == 2
    assert server.unconditional_requests == 1
    _path, headers = server.request_headers[-1]
    assert headers["If-None-Match"] == first.etag
    assert headers["User-Agent"].startswith("SovereignWatch/")
    assert "application/rss+xml" in headers["Accept"]
    assert "gzip" in headers["Accept-Encoding"]


async def test_changed_feed_is_downloaded_again(server: FeedServer) -> None:
    server.set_feed("/feed.xml", SAMPLE_RSS)
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        first = await fetcher.fetch(server.url("/feed.xml"))
        newer = make_rss("Sample feed", [("Fresh item", "http://example.invalid/new", "New")])
        server.set_feed("/feed.xml", newer)
        second = await fetcher.fetch(server.url("/feed.xml"), etag=first.etag)
    assert second.status == 200 and second.body == newer
    assert second.etag != first.etag


async def test_last_modified_alone_gives_304_until_the_feed_changes(server: FeedServer) -> None:
    server.set_feed("/lm.xml", SAMPLE_RSS, etag=None)
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        first = await fetcher.fetch(server.url("/lm.xml"))
        assert first.etag is None and first.last_modified
        second = await fetcher.fetch(server.url("/lm.xml"), last_modified=first.last_modified)
        newer = make_rss("Sample feed", [("Later item", "http://example.invalid/later", "x")])
        server.set_feed("/lm.xml", newer, etag=None)
        third = await fetcher.fetch(server.url("/lm.xml"), last_modified=first.last_modified)
    assert second.not_modified and second.last_modified == first.last_modified
    assert third.status == 200 and third.body == newer
    assert third.last_modified != first.last_modified
    assert server.request_headers[-1][1]["If-Modified-Since"] == first.last_modified


async def test_gzip_body_is_decoded_and_wire_size_reported(server: FeedServer) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        result = await fetcher.fetch(server.url("/gzip"))
    assert result.body == SAMPLE_RSS
    assert result.bytes_read == server.bytes_sent < len(SAMPLE_RSS)


# -- size and time caps ----------------------------------------------------------------------


async def test_huge_streamed_body_is_cut_off_at_the_cap(server: FeedServer) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=1 * MIB, total_timeout=10.0)
    tracemalloc.start()
    try:
        async with FeedFetcher(limits) as fetcher:
            with pytest.raises(BodyTooLarge, match=r"body larger than 1 MB"):
                await fetcher.fetch(server.url("/huge"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The connection was dropped: the server never got to push the whole 30 MB.
    assert server.bytes_sent < HUGE_SIZE // 2
    assert peak < 12 * MIB


async def test_huge_body_with_default_cap_reports_10_mb(server: FeedServer) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        with pytest.raises(BodyTooLarge, match=r"^body larger than 10 MB$"):
            await fetcher.fetch(server.url("/huge"))
    assert server.bytes_sent < HUGE_SIZE


async def test_declared_content_length_over_cap_is_refused_before_reading(
    server: FeedServer,
) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=1 * MIB)
    async with FeedFetcher(limits) as fetcher:
        started = time.monotonic()
        with pytest.raises(BodyTooLarge):
            await fetcher.fetch(server.url("/huge-cl"))
    assert time.monotonic() - started < 2.0
    assert server.bytes_sent < HUGE_SIZE // 2


async def test_slow_drip_hits_the_total_deadline(server: FeedServer) -> None:
    limits = FetchLimits(allow_private=True, total_timeout=2.0, connect_timeout=1.0)
    async with FeedFetcher(limits) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match=r"timed out after 2s"):
            await fetcher.fetch(server.url("/slow"))
    assert 1.5 < time.monotonic() - started < 3.5


class HangingResolver(MapResolver):
    """DNS that never answers: the connect deadline must still fire."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_connect_deadline_covers_a_stuck_lookup() -> None:
    limits = FetchLimits(allow_private=True, connect_timeout=0.5, total_timeout=5.0)
    async with FeedFetcher(limits, resolver=HangingResolver({})) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match=r"timed out after 0.5s \(connect\)"):
            await fetcher.fetch("http://stuck.test/feed.xml")
    assert time.monotonic() - started < 2.0


# -- redirects and statuses ------------------------------------------------------------------


async def test_redirect_chain_within_limit_is_followed(server: FeedServer) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        result = await fetcher.fetch(server.url("/redirect/3"))
    assert result.url == server.url("/redirect/3")
    assert result.final_url == server.url("/redirect/0")
    assert result.body == SAMPLE_RSS


async def test_redirect_loop_and_long_chain_are_refused(server: FeedServer) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        with pytest.raises(TooManyRedirects, match="loop"):
            await fetcher.fetch(server.url("/redirect-loop"))
        with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
            await fetcher.fetch(server.url("/redirect/9"))
    assert server.requests["/redirect-loop"] == 1
    assert sum(n for p, n in server.requests.items() if p.startswith("/redirect/")) == 6


async def test_error_statuses_raise_http_status_error(server: FeedServer) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        for code in (500, 404, 403):
            with pytest.raises(HttpStatusError) as info:
                await fetcher.fetch(server.url(f"/status/{code}"))
            assert info.value.status == code
            assert info.value.reason == f"HTTP {code}"


async def test_flaky_feed_recovers_on_a_later_poll(server: FeedServer) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        for _ in range(server.flaky_failures):
            with pytest.raises(HttpStatusError):
                await fetcher.fetch(server.url("/flaky"))
        result = await fetcher.fetch(server.url("/flaky"))
    assert result.body == SAMPLE_RSS


async def test_html_page_is_returned_with_its_content_type(server: FeedServer) -> None:
    # Deciding "not a feed" is the parser's job; the fetcher must pass the type along.
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        result = await fetcher.fetch(server.url("/html"))
    assert result.content_type is not None and result.content_type.startswith("text/html")


async def test_connection_refused_and_dns_failure_are_feed_errors() -> None:
    resolver = MapResolver({})
    async with FeedFetcher(PRIVATE_OK, resolver=resolver) as fetcher:
        with pytest.raises(FeedError, match=r"^connection failed: "):
            await fetcher.fetch(f"http://127.0.0.1:{_closed_port()}/feed.xml")
        with pytest.raises(FeedError, match=r"^connection failed: cannot resolve nowhere.test"):
            await fetcher.fetch("http://nowhere.test/feed.xml")


@pytest.mark.parametrize(
    "url", ["ftp://example.invalid/feed", "not a url", "http:///nohost", "file:///etc/passwd"]
)
async def test_unsupported_urls(url: str) -> None:
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        with pytest.raises(FeedError, match="unsupported URL"):
            await fetcher.fetch(url)


async def test_failure_is_logged_once_without_the_body(
    server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.core.fetch")
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        with pytest.raises(HttpStatusError):
            await fetcher.fetch(server.url("/status/500"))
    records = [r for r in caplog.records if r.name == "bot.core.fetch"]
    assert len(records) == 1
    assert records[0].__dict__["feed_url"] == server.url("/status/500")
    assert records[0].__dict__["reason"] == "HTTP 500"
    assert "error page" not in caplog.text


# -- the address guard -----------------------------------------------------------------------


def test_is_public_address_table() -> None:
    blocked = [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "not-an-ip",
    ]
    public = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"]
    assert [ip for ip in blocked if is_public_address(ip)] == []
    assert all(is_public_address(ip) for ip in public)


async def test_guard_blocks_private_targets_before_any_request(server: FeedServer) -> None:
    port = server.port
    urls = [
        f"http://127.0.0.1:{port}/feed.xml",
        "http://169.254.169.254/latest/meta-data",
        f"http://[::1]:{port}/",
        f"http://localhost:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
    ]
    async with FeedFetcher(FetchLimits(total_timeout=5.0)) as fetcher:
        for url in urls:
            with pytest.raises(BlockedAddress, match=r"SW_ALLOW_PRIVATE_FEEDS=true"):
                await fetcher.fetch(url)
        # Legacy numeric spellings of loopback are refused outright.
        for url in (f"http://2130706433:{port}/", f"http://127.1:{port}/", "http://0x7f000001/"):
            with pytest.raises(FeedError):
                await fetcher.fetch(url)
    assert sum(server.requests.values()) == 0


async def test_guard_message_names_the_resolved_address(server: FeedServer) -> None:
    async with FeedFetcher(FetchLimits()) as fetcher:
        with pytest.raises(BlockedAddress) as info:
            await fetcher.fetch(f"http://localhost:{server.port}/")
    assert info.value.reason == (
        "localhost resolves to a private address 127.0.0.1 "
        "(set SW_ALLOW_PRIVATE_FEEDS=true to allow)"
    )


def _only_first_loopback(ip: str) -> bool:
    """Test seam: treat 127.0.0.1 as public, every other non-public address stays blocked."""
    return ip == "127.0.0.1" or is_public_address(ip)


async def test_every_redirect_hop_is_checked_for_ip_literals(server: FeedServer) -> None:
    server.set_feed("/feed.xml", SAMPLE_RSS)
    target = f"http://127.0.0.2:{server.port}/feed.xml"
    async with FeedFetcher(FetchLimits(), is_allowed=_only_first_loopback) as fetcher:
        ok = await fetcher.fetch(server.url("/feed.xml"))
        with pytest.raises(BlockedAddress, match=re.escape("127.0.0.2")):
            await fetcher.fetch(server.url(f"/redirect-to?url={target}"))
    assert ok.status == 200
    assert server.requests["/redirect-to"] == 1


async def test_every_redirect_hop_is_checked_after_dns(server: FeedServer) -> None:
    server.set_feed("/feed.xml", SAMPLE_RSS)
    resolver = MapResolver(
        {
            "feeds.test": ["127.0.0.1"],
            "internal.test": ["127.0.0.2"],
            "mixed.test": ["127.0.0.1", "127.0.0.2"],
        }
    )
    port = server.port
    hop = f"http://internal.test:{port}/feed.xml"
    async with FeedFetcher(
        FetchLimits(), is_allowed=_only_first_loopback, resolver=resolver
    ) as fetcher:
        ok = await fetcher.fetch(f"http://feeds.test:{port}/feed.xml")
        with pytest.raises(BlockedAddress, match=r"internal\.test resolves to a private address"):
            await fetcher.fetch(f"http://feeds.test:{port}/redirect-to?url={hop}")
        # One bad answer among several is enough to refuse (the connector might try it).
        with pytest.raises(BlockedAddress, match=re.escape("127.0.0.2")):
            await fetcher.fetch(f"http://mixed.test:{port}/feed.xml")
    assert ok.body == SAMPLE_RSS
    assert "internal.test" in resolver.lookups
    assert server.requests["/feed.xml"] == 1


# -- many feeds ------------------------------------------------------------------------------


async def test_fetch_many_keeps_order_and_isolates_bad_feeds(server: FeedServer) -> None:
    server.set_feed("/a.xml", SAMPLE_RSS)
    other = make_rss("Other", [("Other item", "http://example.invalid/o", "o")])
    server.set_feed("/b.xml", other)
    async with FeedFetcher(PRIVATE_OK) as fetcher:
        results = await fetcher.fetch_many(
            [
                (server.url("/a.xml"), None, None),
                (server.url("/status/500"), None, None),
                ("ftp://example.invalid/", None, None),
                (server.url("/redirect-loop"), None, None),
                (server.url("/b.xml"), None, None),
            ]
        )
    first, *bad, last = results
    assert isinstance(first, FetchResult) and first.body == SAMPLE_RSS
    assert isinstance(last, FetchResult) and last.body == other
    assert [type(r) for r in bad] == [HttpStatusError, FeedError, TooManyRedirects]


async def test_one_request_per_host_at_a_time(server: FeedServer) -> None:
    for i in range(6):
        server.set_feed(f"/slow{i}.xml", SAMPLE_RSS, delay=0.15)
    port = server.port
    requests: list[tuple[str, str | None, str | None]] = []
    for i in range(6):
        host = "127.0.0.1" if i % 2 else "localhost"
        requests.append((f"http://{host}:{port}/slow{i}.xml", None, None))
    resolver = MapResolver({"localhost": ["127.0.0.1"]})
    limits = FetchLimits(allow_private=True, concurrency=4, total_timeout=5.0)
    async with FeedFetcher(limits, resolver=resolver) as fetcher:
        results = await fetcher.fetch_many(requests)
    assert all(isinstance(r, FetchResult) for r in results)
    assert server.max_in_flight_per_host[f"127.0.0.1:{port}"] == 1
    assert server.max_in_flight_per_host[f"localhost:{port}"] == 1
    assert server.max_in_flight == 2  # the two hosts did run side by side


async def test_overall_concurrency_is_capped(server: FeedServer) -> None:
    names = [f"host{i}.test" for i in range(6)]
    resolver = MapResolver({name: ["127.0.0.1"] for name in names})
    server.set_feed("/feed.xml", SAMPLE_RSS, delay=0.15)
    limits = FetchLimits(allow_private=True, concurrency=2, total_timeout=5.0)
    async with FeedFetcher(limits, resolver=resolver) as fetcher:
        results = await fetcher.fetch_many(
            [(f"http://{name}:{server.port}/feed.xml", None, None) for name in names]
        )
    assert all(isinstance(r, FetchResult) for r in results)
    assert server.max_in_flight == 2
