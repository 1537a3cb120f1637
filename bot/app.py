"""Composition root: the only module that joins settings, storage, core and adapters."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from bot.config import Settings
from bot.core.classify import Classifier
from bot.core.deliver.match import make_matcher
from bot.core.deliver.ratelimit import TELEGRAM_PAID_LIMITS
from bot.core.deliver.worker import DeliveryWorker, PlatformPolicy, WorkerConfig
from bot.core.extractive import ExtractiveAnswerer
from bot.core.feedlist import builtin_feeds, read_feed_file
from bot.core.fetch import FeedFetcher, FetchLimits
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.llm import LLMAnswerer
from bot.core.poll import FeedPoller
from bot.core.ports import AlertSender
from bot.core.refine import ItemRefiner
from bot.core.retrieve import Retriever
from bot.core.service import BotService
from bot.core.starter import load_starter_knowledge
from bot.ops.runtime import Operations, OpsConfig, OpsHooks
from storage.db import open_database
from storage.heartbeats import write_heartbeat
from storage.repositories import Store
from storage.retention import prune_file
from storage.stats import collect_stats

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
    refiner: ItemRefiner | None = None

    def fetch_limits(self) -> FetchLimits:
        return FetchLimits(
            allow_private=self.settings.allow_private_feeds,
            total_timeout=self.settings.fetch_timeout_seconds,
            connect_timeout=min(10.0, self.settings.fetch_timeout_seconds),
            max_bytes=self.settings.max_feed_bytes,
        )

    def poller(self, fetcher: FeedFetcher) -> FeedPoller:
        return FeedPoller(
            self.store, self.ingestor, fetcher, self.settings.poll_seconds, self.refiner
        )

    def operations(self, **overrides: float) -> Operations:
        """Health endpoint, heartbeat row, retention and the delivery lock for `run`."""
        db_path = self.settings.db_path
        days = self.settings.retention_days

        async def prune() -> object:
            return await asyncio.to_thread(prune_file, db_path, days=days)

        hooks = OpsHooks(
            write_meta=lambda key, value: write_heartbeat(self.store.db, key, value),
            store_stats=lambda: collect_stats(self.store.db),
            prune=prune if str(db_path) != ":memory:" else None,
        )
        config = OpsConfig(
            db_path=db_path,
            http_port=self.settings.http_port,
            http_host=self.settings.http_host,
            heartbeat_every=self.settings.heartbeat_seconds,
            **overrides,
        )
        return Operations(hooks, config)

    def sync_feed_list(self) -> None:
        """Seed the feed list: SW_FEEDS_FILE when set, else the built-in list on first start."""
        if self.settings.feeds_file is not None:
            refs = read_feed_file(self.settings.feeds_file)
            # An operator's list replaces the built-in one: stop polling built-in feeds that
            # an earlier start without SW_FEEDS_FILE may have added.
            wanted = {ref.url for ref in refs}
            for builtin in builtin_feeds():
                if builtin.url not in wanted:
                    self.store.sources.remove(builtin.url)
        elif self.store.meta.get("builtin_feeds_seeded") is None:
            refs = builtin_feeds()
            self.store.meta.set("builtin_feeds_seeded", "1")
        else:
            return
        for ref in refs:
            self.store.sources.ensure(ref.url, name=ref.name, kind="feed")

    def delivery_worker(
        self, senders: dict[str, AlertSender], config: WorkerConfig | None = None
    ) -> DeliveryWorker:
        policies: dict[str, PlatformPolicy] = {}
        if self.settings.telegram_paid_broadcast:
            policies["telegram"] = PlatformPolicy(TELEGRAM_PAID_LIMITS, idempotent=False)
        return DeliveryWorker(
            self.store,
            senders,
            policies=policies,
            config=config or WorkerConfig(poll_seconds=self.settings.poll_seconds),
            country_name=self.gazetteer.country_name,
        )

    def close(self) -> None:
        self.store.close()

    async def aclose(self) -> None:
        """Close the model client (its HTTP pool) as well as the store."""
        if self.llm is not None:
            await self.llm.close()
        if self.refiner is not None:
            await self.refiner.close()
        self.close()


async def open_senders(settings: Settings) -> dict[str, AlertSender]:
    """The outbound senders of every platform whose token is set (interactive adapters reuse
    them). Imported lazily: commands without tokens never load discord.py or PTB."""
    senders: dict[str, AlertSender] = {}
    try:
        if settings.telegram_bot_token:
            from bot.adapters.telegram_sender import open_telegram_sender

            senders["telegram"] = await open_telegram_sender(
                settings.telegram_bot_token.get_secret_value(),
                base_url=settings.telegram_api_base_url,
                paid_broadcast=settings.telegram_paid_broadcast,
            )
        if settings.discord_bot_token:
            from bot.adapters.discord_sender import open_discord_sender

            senders["discord"] = await open_discord_sender(
                settings.discord_bot_token.get_secret_value(),
                api_base_url=settings.discord_api_base_url,
            )
    except BaseException:
        await close_senders(senders)
        raise
    return senders


async def close_senders(senders: dict[str, AlertSender]) -> None:
    for sender in senders.values():
        close = getattr(sender, "close", None)
        if close is not None:
            try:
                await close()
            except Exception as exc:  # closing is best effort at shutdown
                log.warning("sender did not close cleanly", extra={"reason": repr(exc)})


def build_app(settings: Settings, *, load_starter: bool | None = None) -> App:
    store = Store(open_database(settings.db_path))
    gazetteer = Gazetteer.load()
    classifier = Classifier(gazetteer)
    matcher = make_matcher(store.subscriptions.active, store.subscriptions.version)
    ingestor = Ingestor(store, classifier, matcher)
    if settings.load_starter if load_starter is None else load_starter:
        load_starter_knowledge(store, ingestor)
    retriever = Retriever(store.articles, gazetteer)
    extractive = ExtractiveAnswerer(retriever)
    llm = refiner = None
    if settings.llm_enabled:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        base, model, timeout = (
            settings.openai_base_url,
            settings.openai_model,
            settings.llm_timeout_seconds,
        )
        llm = LLMAnswerer(
            retriever=retriever,
            extractive=extractive,
            base_url=base,
            api_key=key,
            model=model,
            timeout=timeout,
        )
        if settings.llm_refine:
            refiner = ItemRefiner(
                classifier=classifier, base_url=base, api_key=key, model=model, timeout=timeout
            )
    service = BotService(
        store,
        gazetteer,
        extractive,
        llm=llm.answer if llm else None,
        owner_ids=settings.owner_ids,
    )
    return App(settings, store, gazetteer, ingestor, service, llm=llm, refiner=refiner)
