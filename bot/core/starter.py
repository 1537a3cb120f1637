"""Load the curated starter knowledge into a fresh store, so an offline install can answer."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING

from bot.core.models import Classification, FeedEntry
from bot.core.ports import StorePort

if TYPE_CHECKING:  # the ingestor reads the starter entries too (as background for grouping)
    from bot.core.ingest import Ingestor

log = logging.getLogger(__name__)

STARTER_SOURCE_URL = "sovereign-watch:starter-knowledge"
STARTER_VERSION_KEY = "starter_knowledge_version"


def read_starter_entries() -> list[tuple[FeedEntry, Classification]]:
    raw = resources.files("bot").joinpath("data/starter_knowledge.jsonl").read_text("utf-8")
    entries: list[tuple[FeedEntry, Classification]] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        published = None
        if item.get("published"):
            published = datetime.fromisoformat(item["published"]).replace(tzinfo=UTC)
        label = Classification(
            relevant=True,
            score=1.0,
            countries=tuple(item.get("countries") or ()),
            topics=tuple(item.get("topics") or ()),
        )
        entries.append(
            (
                FeedEntry(
                    url=item["url"],
                    title=item["title"],
                    summary=item["summary"],
                    published=published,
                    source=item.get("source") or "Sovereign Watch starter knowledge",
                    feed_url=STARTER_SOURCE_URL,
                    guid=item["id"],
                    lang=item.get("lang") or "en",
                ),
                label,
            )
        )
    return entries


def starter_version() -> str:
    raw = resources.files("bot").joinpath("data/starter_knowledge.jsonl").read_bytes()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def load_starter_knowledge(store: StorePort, ingestor: Ingestor) -> int:
    """Store the starter entries once per version of the file; count of new items."""
    version = starter_version()
    if store.meta.get(STARTER_VERSION_KEY) == version:
        return 0
    source_id = store.sources.ensure(
        STARTER_SOURCE_URL, name="Sovereign Watch starter knowledge", kind="starter"
    )
    pairs = read_starter_entries()
    counts = ingestor.ingest(
        [entry for entry, _ in pairs],
        source_id=source_id,
        kind="starter",
        alerts=False,
        labels={entry.url: label for entry, label in pairs},
    )
    store.meta.set(STARTER_VERSION_KEY, version)
    log.info("starter knowledge loaded", extra={"new": counts.new})
    return counts.new
