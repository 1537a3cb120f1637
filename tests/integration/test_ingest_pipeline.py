"""Feeds to store, end to end through the real `sovereign-watch` process and a local feed server.

Each test asserts what an operator sees (`feeds list`, `export`, exit codes, logs) and that
nothing good is lost when something bad happens next to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli_async
from tests.fakes.feed_server import FeedServer, make_rss

GOOD = make_rss(
    "Policy Wire",
    [
        (
            "Korea's science ministry picks five teams for sovereign AI foundation models",
            "https://news.example/kr-five",
            "<p>The Ministry of Science and ICT chose Naver Cloud, "
            "Upstage, SK Telecom, NC AI and LG AI Research.</p>",
        ),
        (
            "Local bakery wins bread award",
            "https://news.example/bread",
            "<p>A bakery in town won a prize.</p>",
        ),
    ],
)
HOSTILE = make_rss(
    "Hostile Wire",
    [
        (
            "@everyone <script>alert(1)</script> France **funds** Mistral AI compute",
            "https://news.example/hostile?utm_source=x",
            '<img src=x onerror=alert(1)><a href="javascript:alert(2)">click</a> '
            "The French government backs Mistral AI with national compute.</p>",
        ),
    ],
)
DUPES = make_rss(
    "Dupe Wire",
    [
        ("Japan funds GENIAC compute for domestic models", "https://news.example/jp1", "x"),
        ("Japan funds GENIAC compute for domestic models", "https://news.example/jp1", "x"),
    ],
)


cli = run_cli_async


def exported(out: str) -> dict[str, dict[str, object]]:
    return {row["url"]: row for row in map(json.loads, out.splitlines())}


@pytest.fixture
async def server() -> object:
    async with FeedServer(flaky_failures=1, slow_seconds=30) as srv:
        yield srv


async def test_bad_feeds_next_to_good_ones(
    server: FeedServer, db_path: Path, tmp_path: Path
) -> None:
    server.set_feed("/good.xml", GOOD)
    server.set_feed("/hostile.xml", HOSTILE)
    server.set_feed("/dupes.xml", DUPES)
    server.set_feed("/truncated.xml", GOOD[: len(GOOD) // 2])
    server.set_feed("/garbage.xml", b"<rss><channel><item><title>x</titl")
    feeds = [
        "/good.xml",
        "/hostile.xml",
        "/dupes.xml",
        "/truncated.xml",
        "/garbage.xml",
        "/html",
        "/huge",
        "/slow",
        "/status/500",
        "/redirect-loop",
    ]
    feeds_file = tmp_path / "feeds.txt"
    feeds_file.write_text("\n".join(server.url(p) for p in feeds) + "\n")
    env = {
        "SW_FEEDS_FILE": str(feeds_file),
        "SW_FETCH_TIMEOUT_SECONDS": "3",
        "SW_MAX_FEED_BYTES": "1048576",
    }

    code, out, err = await cli(db_path, "poll", "--once", **env)
    assert code == 0, err
    code, listing, _ = await cli(db_path, "feeds", "list", **env)
    lines = {line.split()[0]: line for line in listing.splitlines()}
    assert "[ok]" in lines[server.url("/good.xml")]
    assert "not a feed" in lines[server.url("/html")]
    assert "larger than" in lines[server.url("/huge")]
    assert "timed out" in lines[server.url("/slow")]
    assert "HTTP 500" in lines[server.url("/status/500")]
    assert "redirect" in lines[server.url("/redirect-loop")]
    assert "errors=1" in lines[server.url("/slow")]
    assert server.bytes_sent < 15 * 1024 * 1024  # the 30 MB body was cut off, not read

    code, out, _ = await cli(db_path, "export", **env)
    items = exported(out)
    assert items["https://news.example/kr-five"]["relevant"] is True
    assert items["https://news.example/kr-five"]["countries"] == ["KR"]
    assert items["https://news.example/bread"]["relevant"] is False
    assert sum(1 for u in items if u == "https://news.example/jp1") == 1
    hostile = items["https://news.example/hostile"]  # tracking parameter gone
    text = json.dumps(hostile).lower()
    assert "<script" not in text and "onerror" not in text and "javascript:" not in text
    assert "@everyone" in str(hostile["title"])  # kept as text; made inert when rendered

    # The 500 recovers on the next poll; what was stored is not lost or doubled.
    server.set_feed("/status/500", GOOD)  # (the route is fixed; a new feed path recovers)
    code, out, _ = await cli(db_path, "poll", "--once", **env)
    assert code == 0
    code, out2, _ = await cli(db_path, "export", **env)
    assert len(exported(out2)) == len(items)


async def test_conditional_get_and_empty_answers_keep_what_is_stored(
    server: FeedServer, db_path: Path, tmp_path: Path
) -> None:
    server.set_feed("/feed.xml", GOOD)
    feeds_file = tmp_path / "feeds.txt"
    feeds_file.write_text(server.url("/feed.xml") + "\n")
    env = {"SW_FEEDS_FILE": str(feeds_file)}
    assert (await cli(db_path, "poll", "--once", **env))[0] == 0
    assert (await cli(db_path, "poll", "--once", **env))[0] == 0
    _, listing, _ = await cli(db_path, "feeds", "list", **env)
    assert "[not_modified]" in listing
    assert server.unconditional_requests == 1
    server.set_feed("/feed.xml", make_rss("Policy Wire", []))  # the feed empties
    assert (await cli(db_path, "poll", "--once", **env))[0] == 0
    _, out, _ = await cli(db_path, "export", **env)
    assert len(exported(out)) == 2
    _, listing, _ = await cli(db_path, "feeds", "list", **env)
    assert "[empty]" in listing


async def test_private_addresses_are_refused_unless_allowed(
    server: FeedServer, db_path: Path
) -> None:
    server.set_feed("/feed.xml", GOOD)
    for url in (server.url("/feed.xml"), "http://169.254.169.254/latest/meta-data/"):
        code, out, _err = await cli(
            db_path, "ingest", "--json", url, SW_ALLOW_PRIVATE_FEEDS="false", timeout=60
        )
        assert code == 0
        result = json.loads(out)
        assert result["new"] == 0
        assert "private" in result["errors"][0] or "address" in result["errors"][0]
    assert server.requests.get("/feed.xml", 0) == 0


async def test_ingest_json_counts_and_files(db_path: Path, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(GOOD)
    code, out, _ = await cli(db_path, "ingest", "--json", str(feed), str(tmp_path / "missing.xml"))
    assert code == 0
    result = json.loads(out)
    assert result == {
        "fetched": 2,
        "new": 2,
        "relevant": 1,
        "duplicates": 0,
        "errors": [result["errors"][0]],
    }
    assert "missing.xml" in result["errors"][0]
    code, out, _ = await cli(db_path, "ingest", "--json", str(feed))
    assert json.loads(out)["duplicates"] == 2


async def test_feed_list_commands_and_opml_round_trip(db_path: Path, tmp_path: Path) -> None:
    code, out, _ = await cli(db_path, "feeds", "add", "https://feeds.example/a.xml")
    assert code == 0 and "added" in out
    code, out, _ = await cli(db_path, "feeds", "add", "not-a-url")
    assert code == 2
    code, opml, _ = await cli(db_path, "feeds", "export")
    assert "https://feeds.example/a.xml" in opml and "<opml" in opml
    (tmp_path / "f.opml").write_text(opml.replace("a.xml", "b.xml"))
    code, out, _ = await cli(db_path, "feeds", "import", str(tmp_path / "f.opml"))
    assert code == 0 and "imported" in out
    code, out, _ = await cli(db_path, "feeds", "remove", "https://feeds.example/a.xml")
    assert code == 0
    code, listing, _ = await cli(db_path, "feeds", "list")
    assert "b.xml" in listing and "a.xml" not in listing
    code, _, err = await cli(db_path, "feeds", "remove", "https://feeds.example/zzz.xml")
    assert code == 2 and "not on the feed list" in err


async def test_kill_during_ingest_stores_each_item_once(db_path: Path, tmp_path: Path) -> None:
    """kill -9 mid-ingest: the rerun stores every item exactly once."""
    items = [
        (
            f"Korea's MSIT funds national AI compute round {i}",
            f"https://k.example/{i}",
            "The Ministry of Science and ICT backs sovereign AI models.",
        )
        for i in range(400)
    ]
    paths = []
    for n in range(20):
        path = tmp_path / f"f{n}.xml"
        path.write_bytes(make_rss(f"Feed {n}", items[n * 20 : (n + 1) * 20]))
        paths.append(str(path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "ingest",
        *paths,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=cli_env(db_path, SW_LOAD_STARTER="false"),
        cwd=db_path.parent.parent,
    )
    await asyncio.sleep(1.2)
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    code, _out, err = await cli(db_path, "ingest", "--json", *paths)
    assert code == 0, err
    _, exp, _ = await cli(db_path, "export")
    urls = [json.loads(line)["url"] for line in exp.splitlines()]
    assert len(urls) == len(set(urls)) == 400
