"""Prometheus metrics: counters the loops bump, plus store figures read at scrape time.

Alert and outbox figures come from the store when `/metrics` is scraped, not from counters in
this process: they survive restarts, count what any process (or `deliver --once`) sent, and
cannot drift from what the outbox actually holds. Everything lives in one registry of our
own, so `/metrics` shows only Sovereign Watch and tests can read values back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.ops.stats import StoreStats

log = logging.getLogger(__name__)

disable_created_metrics()  # `*_created` samples only double the size of every scrape
REGISTRY = CollectorRegistry()

_FEEDS_POLLED = Counter("sw_feeds_polled", "Feed polls finished (any outcome).", registry=REGISTRY)
_FEEDS_FAILED = Counter(
    "sw_feeds_failed",
    "Feed polls that failed, by reason (timeout, not_a_feed, error, disabled).",
    ["reason"],
    registry=REGISTRY,
)
_ITEMS_INGESTED = Counter(
    "sw_items_ingested", "New items stored (duplicates excluded).", registry=REGISTRY
)
_ITEMS_KEPT = Counter(
    "sw_items_kept", "New items judged about a national AI effort.", registry=REGISTRY
)
_STORIES_CREATED = Counter(
    "sw_stories_started", "Stories started by a new item.", registry=REGISTRY
)
_ANSWER_LATENCY = Histogram(
    "sw_answer_latency_seconds",
    "Time to answer one question, by how it was answered (llm or extractive).",
    ["mode"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
    registry=REGISTRY,
)
_LLM_CALLS = Counter("sw_llm_calls", "Requests sent to the language model.", registry=REGISTRY)
_LLM_FALLBACKS = Counter(
    "sw_llm_fallbacks",
    "Model answers replaced by the extractive one, by reason.",
    ["reason"],
    registry=REGISTRY,
)
_REFINEMENTS = Counter(
    "sw_refinements",
    "Unsure items sent to the model for a second opinion, by outcome (ok, unusable, error, late).",
    ["outcome"],
    registry=REGISTRY,
)


# --- what the loops call ------------------------------------------------------------------------
def feed_polled(ok: bool, reason: str = "error") -> None:
    """One feed poll finished; `reason` names the failure when `ok` is false."""
    _FEEDS_POLLED.inc()
    if not ok:
        _FEEDS_FAILED.labels(reason=reason).inc()


def items_ingested(new: int, kept: int, stories: int = 0) -> None:
    if new:
        _ITEMS_INGESTED.inc(new)
    if kept:
        _ITEMS_KEPT.inc(kept)
    if stories:
        _STORIES_CREATED.inc(stories)


def answer_latency(seconds: float, mode: str) -> None:
    _ANSWER_LATENCY.labels(mode=mode).observe(max(0.0, seconds))


def llm_called() -> None:
    _LLM_CALLS.inc()


def llm_fallback(reason: str) -> None:
    _LLM_FALLBACKS.labels(reason=reason).inc()


def refinement(outcome: str) -> None:
    _REFINEMENTS.labels(outcome=outcome).inc()


# --- scrape-time figures ------------------------------------------------------------------------
StatsProvider = Callable[[], StoreStats]
LoopsProvider = Callable[[], Mapping[str, bool]]


class _StoreCollector(Collector):
    """Reads the store on each scrape; a failed read shows as `sw_store_readable 0`."""

    def __init__(self, provider: StatsProvider) -> None:
        self.provider = provider

    def collect(self) -> Iterator[Metric]:
        try:
            stats = self.provider()
        except Exception as exc:  # a scrape must never fail because the store is unwell
            log.warning("store figures unavailable for metrics", extra={"reason": repr(exc)})
            yield GaugeMetricFamily("sw_store_readable", "1 when the store could be read.", 0)
            return
        yield GaugeMetricFamily("sw_store_readable", "1 when the store could be read.", 1)
        yield GaugeMetricFamily("sw_articles", "Articles in the store.", stats.articles)
        yield GaugeMetricFamily("sw_stories", "Stories in the store.", stats.stories)
        yield GaugeMetricFamily(
            "sw_outbox_depth", "Deliveries not yet settled.", stats.outbox_depth
        )
        yield GaugeMetricFamily(
            "sw_outbox_oldest_age_seconds",
            "How long the oldest undelivered row has waited.",
            stats.outbox_oldest_age,
        )
        families = {
            "queued": CounterMetricFamily(
                "sw_alerts_queued", "Deliveries ever queued, per platform.", labels=["platform"]
            ),
            "sent": CounterMetricFamily(
                "sw_alerts_sent", "Deliveries sent, per platform.", labels=["platform"]
            ),
            "retries": CounterMetricFamily(
                "sw_alerts_retried",
                "Failed attempts tried again, per platform.",
                labels=["platform"],
            ),
            "failed": CounterMetricFamily(
                "sw_alerts_failed", "Deliveries given up, per platform.", labels=["platform"]
            ),
        }
        pending = GaugeMetricFamily(
            "sw_alerts_pending", "Deliveries waiting, per platform.", labels=["platform"]
        )
        for platform, counts in sorted(stats.alerts.items()):
            for attr, family in families.items():
                family.add_metric([platform], getattr(counts, attr))
            pending.add_metric([platform], counts.live)
        yield from families.values()
        yield pending


class _ProcessCollector(Collector):
    """Gauges from this process's own state: which loops are alive, whether writes succeed."""

    def __init__(self, loops: LoopsProvider, writable: Callable[[], bool]) -> None:
        self.loops = loops
        self.writable = writable

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sw_loop_up", "1 while the named loop is alive.", labels=["loop"])
        for loop, alive in sorted(self.loops().items()):
            up.add_metric([loop], 1.0 if alive else 0.0)
        yield up
        yield GaugeMetricFamily(
            "sw_store_writable", "1 when the last heartbeat write succeeded.", self.writable()
        )


_lock = threading.Lock()
_watchers: dict[str, Collector] = {}


def _replace(key: str, collector: Collector) -> None:
    with _lock:
        old = _watchers.pop(key, None)
        if old is not None:
            REGISTRY.unregister(old)
        REGISTRY.register(collector)
        _watchers[key] = collector


def watch_store(provider: StatsProvider) -> None:
    """Read store figures from `provider` on each scrape (replacing any earlier provider)."""
    _replace("store", _StoreCollector(provider))


def watch_process(loops: LoopsProvider, writable: Callable[[], bool]) -> None:
    """Expose loop liveness and store writability as gauges (replacing any earlier ones)."""
    _replace("process", _ProcessCollector(loops, writable))


def unwatch() -> None:
    """Drop the scrape-time collectors (a closed store must not be read by a later scrape)."""
    with _lock:
        for collector in _watchers.values():
            REGISTRY.unregister(collector)
        _watchers.clear()


def exposition() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)


def value(name: str, labels: dict[str, str] | None = None) -> float:
    """One sample's current value (0 when absent): for tests and `status`."""
    found = REGISTRY.get_sample_value(name, labels or {})
    return float(found) if found is not None else 0.0
