"""A configured model gives a second opinion on unsure items; without a usable answer nothing
changes. Real `sovereign-watch ingest` process, real `openai` client, fake endpoint on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli_async
from tests.fakes.feed_server import FeedServer, make_rss
from tests.fakes.openai_server import FakeOpenAI

ITEMS = [
    (  # unsure: the offline classifier leans "not relevant"
        "Brazil plans AI investment",
        "https://wire.example/brazil",
        "Brazil's government announced an artificial intelligence plan with funding for "
        "supercomputers.",
    ),
    (  # unsure, and really not about a national effort
        "Kenya holds AI workshop",
        "https://wire.example/kenya",
        "Officials in Nairobi met companies to discuss artificial intelligence.",
    ),
    (  # sure: relevant
        "France funds Mistral AI compute",
        "https://wire.example/france",
        "The French government backs Mistral AI with a national compute cluster.",
    ),
    ("Local bakery wins bread award", "https://wire.example/bread", "A bakery won a prize."),
]


def verdicts(messages: list[dict[str, Any]]) -> str:
    item = str(messages[-1]["content"])
    if "Brazil" in item:  # unknown codes and topics must be dropped, not stored
        verdict = {"relevant": True, "countries": ["br", "XX"], "topics": ["funding", "gossip"]}
        return f"Here you go: {json.dumps(verdict)}"
    return '{"relevant": false, "countries": [], "topics": []}'


async def ingest(
    tmp_path: Path, base_url: str, *, feed_url: str | None = None, **extra: str
) -> tuple[dict[str, dict[str, Any]], str]:
    """`ingest` the wire feed (or `poll --once` it from `feed_url`), then `export`."""
    feed = tmp_path / "wire.xml"
    feed.write_bytes(make_rss("Wire", ITEMS))
    db = tmp_path / "data" / "sw.db"
    env = {
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-test-refine",
        "SW_LLM_REFINE": "true",
        **extra,
    }
    steps = [["ingest", "--json", str(feed)], ["export"]]
    if feed_url:  # the operator's list only: the built-in feeds are not on 127.0.0.1
        (tmp_path / "feeds.txt").write_text(f"{feed_url}\n")
        env["SW_FEEDS_FILE"] = str(tmp_path / "feeds.txt")
        steps[0] = ["poll", "--once"]
    rows: dict[str, dict[str, Any]] = {}
    errs = []
    for args in steps:
        code, out, err = await run_cli_async(db, *args, **env)
        assert code == 0, err
        errs.append(err)
        if args[0] == "export":
            rows = {r["url"]: r for r in map(json.loads, out.splitlines())}
    return rows, "".join(errs)


@pytest.mark.parametrize("how", ["ingest", "poll"])
async def test_the_model_settles_only_the_unsure_items(tmp_path: Path, how: str) -> None:
    async with FakeOpenAI(verdicts) as model, FeedServer() as feeds:
        feeds.set_feed("/wire.xml", make_rss("Wire", ITEMS))
        feed_url = feeds.url("/wire.xml") if how == "poll" else None
        rows, log = await ingest(tmp_path, model.base_url, feed_url=feed_url)
    asked = [str(r["messages"][-1]["content"]) for r in model.requests]
    assert (
        len(asked) == 2 and any("Brazil" in a for a in asked) and any("Kenya" in a for a in asked)
    )
    brazil = rows["https://wire.example/brazil"]
    assert brazil["relevant"] is True
    assert brazil["countries"] == ["BR"] and brazil["topics"] == ["funding"]
    assert rows["https://wire.example/kenya"]["relevant"] is False
    assert rows["https://wire.example/france"]["relevant"] is True  # never asked, kept
    assert rows["https://wire.example/bread"]["relevant"] is False
    assert "sk-test-refine" not in log


@pytest.mark.parametrize("trouble", ["status 500", "prose", "slow"])
async def test_without_a_usable_answer_the_offline_verdict_stands(
    tmp_path: Path, trouble: str
) -> None:
    model = FakeOpenAI(lambda _m: "Brazil? Definitely relevant, I would say.")
    async with model:
        if trouble == "status 500":
            model.fail_next(500, n=10)
        elif trouble == "slow":
            model.delay_first_token(30)
        rows, log = await ingest(tmp_path, model.base_url, SW_LLM_TIMEOUT_SECONDS="1")
    assert rows["https://wire.example/brazil"]["relevant"] is False
    assert rows["https://wire.example/france"]["relevant"] is True
    assert len(rows) == len(ITEMS)
    assert ("refinement unusable" if trouble == "prose" else "refinement skipped") in log


async def test_off_unless_asked_for(tmp_path: Path) -> None:
    """A model configured for answers is not asked about items unless SW_LLM_REFINE is on."""
    async with FakeOpenAI(verdicts) as model:
        rows, _ = await ingest(tmp_path, model.base_url, SW_LLM_REFINE="false")
    assert model.requests == []
    assert rows["https://wire.example/brazil"]["relevant"] is False


async def test_a_slow_model_does_not_hold_the_round_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the round's budget the unanswered items keep their offline verdicts."""
    from bot.core import refine
    from bot.core.classify import Classifier
    from bot.core.models import FeedEntry

    monkeypatch.setattr(refine, "ROUND_BUDGET", 0.5)
    entries = [
        FeedEntry(
            url=link,
            title=title,
            summary=summary,
            published=None,
            source="Wire",
            feed_url="https://wire.example/feed.xml",
            lang="en",
        )
        for title, link, summary in ITEMS
    ]
    model = FakeOpenAI(verdicts)
    async with model:
        model.delay_first_token(10)
        refiner = refine.ItemRefiner(
            classifier=Classifier(), base_url=model.base_url, api_key=None, model="m", timeout=20
        )
        started = asyncio.get_running_loop().time()
        assert await refiner.refine(entries) == {}
        assert asyncio.get_running_loop().time() - started < 3
        await refiner.close()
