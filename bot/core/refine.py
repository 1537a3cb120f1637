"""A second opinion from a configured model on the items the offline classifier is unsure of.

Only items close to the classifier's decision line are sent, a bounded number per round, a few
at a time, each under the model client's deadline. Whatever goes wrong (no answer, an error
status, prose instead of JSON, codes we do not know) keeps the offline verdict: ingestion never
depends on the model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import openai

import prompts
from bot.core.classify import Classifier
from bot.core.ingest import Batch, IngestCounts, Ingestor
from bot.core.models import TOPICS, Classification, FeedEntry
from bot.ops import metrics

log = logging.getLogger(__name__)

UNSURE = (0.2, 0.6)  # classifier scores in [low, high) get a second opinion
MAX_PER_ROUND = 16  # at most this many model calls per poll round
CONCURRENCY = 4
ROUND_BUDGET = 15.0  # seconds a round's alerts may wait for second opinions
_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)


class ItemRefiner:
    """Holds one model client; `refine` returns label overrides keyed by item URL."""

    def __init__(
        self,
        *,
        classifier: Classifier,
        base_url: str | None,
        api_key: str | None,
        model: str,
        timeout: float = 20.0,
    ) -> None:
        self.classifier = classifier
        self.model = model
        self._countries = frozenset(classifier.gazetteer.country_codes())
        self._system = prompts.load("refine_system").format(topics=", ".join(TOPICS))
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=0
        )

    def unsure(self, entries: Sequence[FeedEntry]) -> list[tuple[FeedEntry, Classification]]:
        """The entries worth asking about, most uncertain first, capped per round."""
        low, high = UNSURE
        found = []
        for entry in entries:
            verdict = self.classifier.classify(entry.title, entry.summary, entry.lang)
            if low <= verdict.score < high:
                found.append((entry, verdict))
        found.sort(key=lambda ev: abs(ev[1].score - 0.5))
        return found[:MAX_PER_ROUND]

    async def refine(self, entries: Sequence[FeedEntry]) -> dict[str, Classification]:
        """Model verdicts for the unsure entries that got a usable answer."""
        asked = self.unsure(entries)
        if not asked:
            return {}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(entry: FeedEntry, verdict: Classification) -> Classification | None:
            async with gate:
                return await self._ask(entry, verdict)

        tasks = [asyncio.ensure_future(one(e, v)) for e, v in asked]
        done, late = await asyncio.wait(tasks, timeout=ROUND_BUDGET)
        for task in late:
            task.cancel()
        if late:
            metrics.refinement("late")
            log.warning("refinement cut short", extra={"unanswered": len(late)})
        return {
            e.url: answer
            for (e, _), task in zip(asked, tasks, strict=True)
            if task in done and (answer := task.result()) is not None
        }

    async def _ask(self, entry: FeedEntry, verdict: Classification) -> Classification | None:
        user = f"Title: {entry.title}\nSummary: {entry.summary[:2000]}"
        try:
            reply = await self._client.chat.completions.create(
                model=self.model,
                temperature=0,
                messages=[
                    {"role": "system", "content": self._system},
                    {"role": "user", "content": user},
                ],
            )
            text = reply.choices[0].message.content or "" if reply.choices else ""
        except (TimeoutError, openai.OpenAIError) as exc:
            metrics.refinement("error")
            log.warning(
                "refinement skipped", extra={"url": entry.url, "reason": type(exc).__name__}
            )
            return None
        refined = self._read(text, verdict)
        metrics.refinement("unusable" if refined is None else "ok")
        if refined is None:
            log.warning("refinement unusable", extra={"url": entry.url})
        return refined

    def _read(self, text: str, verdict: Classification) -> Classification | None:
        """The model's JSON as a verdict; None when it is not the shape asked for."""
        found = _JSON_RE.search(text)
        try:
            data: Any = json.loads(found.group(0)) if found else None
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("relevant"), bool):
            return None
        countries = tuple(
            dict.fromkeys(
                c.strip().upper()
                for c in data.get("countries") or ()
                if isinstance(c, str) and c.strip().upper() in self._countries
            )
        )
        topics = tuple(t for t in TOPICS if t in (data.get("topics") or ()))
        relevant = bool(data["relevant"])
        return Classification(
            relevant=relevant,
            score=0.75 if relevant else 0.25,
            countries=(countries or verdict.countries) if relevant else (),
            topics=(topics or verdict.topics) if relevant else (),
            entities=verdict.entities,
        )

    async def close(self) -> None:
        await self._client.close()


async def ingest_refined(
    ingestor: Ingestor, batches: Sequence[Batch], refiner: ItemRefiner | None
) -> list[IngestCounts]:
    """`ingest_many`, with the model's verdicts on unsure new items when a model is configured."""
    labels = await refiner.refine(ingestor.new_entries(batches)) if refiner else None
    return ingestor.ingest_many(batches, labels=labels or None)
