"""Composition root: the only module that joins settings, storage, core and adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.config import Settings
from bot.core.classify import Classifier
from bot.core.deliver.match import make_matcher
from bot.core.extractive import ExtractiveAnswerer
from bot.core.feedlist import builtin_feeds, read_feed_file
from bot.core.fetch import FeedFetcher, FetchLimits
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.llm import LLMAnswerer
from bot.core.poll import FeedPoller
from bot.core.retrieve import Retriever
from bot.core.service import BotService
from bot.core.starter import load_starter_knowledge
from storage.db import open_database
from storage.repositories import Store

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    store: Store
    gazetteer: Gazetteer
    ingestor: Ingestor
    service: BotService
    adapters: list[str] = field(default_factory=list)
    llm: LLMAnswerer | None = None

    def fetch_limits(self) -> FetchLimits:
        return FetchLimits(
            allow_private=self.settings.allow_private_feeds,
            total_timeout=self.settings.fetch_timeout_seconds,
            connect_timeout=min(10.0, self.settings.fetch_timeout_seconds),
            max_bytes=self.settings.max_feed_bytes,
        )

    def poller(self, fetcher: FeedFetcher) -> FeedPoller:
        return FeedPoller(self.store, self.ingestor, fetcher, self.settings.poll_seconds)

    def sync_feed_list(self) -> None:
        """Seed the feed list: SW_FEEDS_FILE when set, else the built-in list on first start."""
        if self.settings.feeds_file is not None:
            refs = read_feed_file(self.settings.feeds_file)
        elif self.store.meta.get("builtin_feeds_seeded") is None:
            refs = builtin_feeds()
            self.store.meta.set("builtin_feeds_seeded", "1")
        else:
            return
        for ref in refs:
            self.store.sources.ensure(ref.url, name=ref.name, kind="feed")

    def close(self) -> None:
        self.store.close()

    async def aclose(self) -> None:
        """Close the model client (its HTTP pool) as well as the store."""
        if self.llm is not None:
            await self.llm.close()
        self.close()


def build_app(settings: Settings, *, load_starter: bool | None = None) -> App:
    store = Store(open_database(settings.db_path))
    gazetteer = Gazetteer.load()
    classifier = Classifier(gazetteer)
    matcher = make_matcher(store.subscriptions.active)
    ingestor = Ingestor(store, classifier, matcher)
    if settings.load_starter if load_starter is None else load_starter:
        load_starter_knowledge(store, ingestor)
    retriever = Retriever(store.articles, gazetteer)
    extractive = ExtractiveAnswerer(retriever)
    llm = None
    if settings.llm_enabled:
        llm = LLMAnswerer(
            retriever=retriever,
            extractive=extractive,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            model=settings.openai_model,
            timeout=settings.llm_timeout_seconds,
        )
    service = BotService(store, gazetteer, extractive, llm=llm.answer if llm else None)
    return App(settings, store, gazetteer, ingestor, service, llm=llm)
