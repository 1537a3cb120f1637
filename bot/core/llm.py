"""Answers written by any OpenAI-compatible model, grounded in the store, with a safe way out.

Only Chat Completions with `stream=True` is used, so OpenAI, Ollama, vLLM and llama.cpp all
work, and no sampling parameters are sent (some models reject them). The model sees only the
retrieved items, numbered; what it writes is checked before anyone sees it: citations must
point at an item, mentions cannot ping, the rules must not leak, and an answer without a valid
citation is replaced by the extractive one. Any endpoint trouble becomes `LLMUnavailable`, so
the caller can fall back to the extractive answer, which always works.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

import prompts
from bot.core.answer_text import question_language
from bot.core.citations import (
    LeakGuard,
    StreamCleaner,
    cited_numbers,
    clean_citations,
    clip,
    neutralise_mentions,
    strip_reasoning,
)
from bot.core.errors import LLMUnavailable
from bot.core.extractive import MAX_ANSWER_CHARS, ExtractiveAnswerer, source_of
from bot.core.models import Answer
from bot.core.retrieve import Hit, Retriever
from bot.ops import metrics

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "ko": "Korean"}
HISTORY_TURNS = 2
# A model that rambles is cut off: nothing past this is ever shown.
MAX_RAW_CHARS = 4 * MAX_ANSWER_CHARS
# Enough trailing text to hold any run of prompt words the leak guard looks for.
_LEAK_WINDOW = 400
_TAG_RE = re.compile(r"</?\s*news\s*>", re.IGNORECASE)
_CITE_STRIP_RE = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")


@dataclass(frozen=True)
class _Plan:
    hits: tuple[Hit, ...]
    guard: LeakGuard
    messages: list[ChatCompletionMessageParam]


class LLMAnswerer:
    """Retrieval, prompt, model call and checks for one question; holds one HTTP client."""

    def __init__(
        self,
        *,
        retriever: Retriever,
        extractive: ExtractiveAnswerer,
        base_url: str | None,
        api_key: str | None,
        model: str,
        timeout: float = 20.0,
        max_retries: int = 1,
        context_chars: int = 6000,
    ) -> None:
        self.retriever = retriever
        self.extractive = extractive
        self.model = model
        self.timeout = timeout
        self.context_chars = context_chars
        self._system_template = prompts.load("answer_system")
        self._user_template = prompts.load("answer_user")
        self._guards: dict[str, LeakGuard] = {}
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=timeout,
            max_retries=max_retries,
        )

    async def answer(self, question: str, history: list[dict[str, str]]) -> Answer:
        """The checked model answer; raises LLMUnavailable when the endpoint lets us down."""
        plan = self._plan(question, history)
        if isinstance(plan, Answer):
            return plan
        try:
            async with aclosing(self._deltas(plan.messages)) as deltas:
                raw = "".join([delta async for delta in deltas])
            return self._finish(question, plan, raw)
        except LLMUnavailable as exc:
            self._warn(exc)
            raise

    def stream(self, question: str, history: list[dict[str, str]]) -> AnswerStream:
        """`async for delta in stream` for text as it arrives, then `stream.result`."""
        return AnswerStream(self, question, history)

    async def close(self) -> None:
        await self._client.close()

    # --- building the request ---------------------------------------------------------------
    def _plan(self, question: str, history: list[dict[str, str]]) -> _Plan | Answer:
        """The request to send, or the extractive answer when the store has no evidence."""
        usable = tuple(self.extractive.grounding_hits(question, limit=6))
        if not usable:
            return self.extractive.answer(question)
        context, used = self._context(usable)
        language = LANGUAGE_NAMES.get(question_language(question), "English")
        system = self._system_template.format(language=language)
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}]
        for turn in history[-HISTORY_TURNS:]:
            q, a = turn.get("q", ""), _CITE_STRIP_RE.sub("", turn.get("a", ""))
            if q and a:
                messages.append({"role": "user", "content": q})
                messages.append({"role": "assistant", "content": a})
        user = self._user_template.format(context=context, question=question, language=language)
        messages.append({"role": "user", "content": user})
        guard = self._guards.get(language)
        if guard is None:
            guard = self._guards[language] = LeakGuard(system)
        return _Plan(hits=usable[:used], guard=guard, messages=messages)

    def _context(self, hits: tuple[Hit, ...]) -> tuple[str, int]:
        """Numbered items within `context_chars`; returns the text and how many items fit."""
        parts: list[str] = []
        used = 0
        share = max(self.context_chars // 2, 400)
        for n, hit in enumerate(hits, 1):
            art = hit.article
            remaining = self.context_chars - used
            if remaining < 200 and parts:
                break
            date = art.published.date().isoformat() if art.published else ""
            byline = ", ".join(x for x in (_flat(art.source), date) if x)
            head = f"[{n}] {_flat(art.title)}" + (f" — {byline}" if byline else "")
            summary = _flat(art.summary or "")
            room = min(remaining, share) - len(head) - 1
            if len(summary) > room:
                summary = clip(summary, max(room, 80))
            entry = f"{head}\n{summary}".rstrip()
            parts.append(entry)
            used += len(entry) + 2
        return "\n\n".join(parts), len(parts)

    # --- talking to the endpoint ------------------------------------------------------------
    async def _deltas(
        self, messages: list[ChatCompletionMessageParam]
    ) -> AsyncGenerator[str, None]:
        """Text deltas; the time spent waiting on the endpoint is capped at `timeout` in all.

        The cap is applied around each wait, never across a `yield`, so a slow consumer is
        not charged and a cancellation never lands in the consumer's code.
        """
        loop = asyncio.get_running_loop()
        budget = self.timeout
        stream: openai.AsyncStream[ChatCompletionChunk] | None = None
        received = 0
        metrics.llm_called()
        try:
            started = loop.time()
            async with asyncio.timeout(budget):
                stream = await self._client.chat.completions.create(
                    model=self.model, messages=messages, stream=True
                )
            budget -= loop.time() - started
            chunks = stream.__aiter__()
            while received < MAX_RAW_CHARS:
                started = loop.time()
                try:
                    async with asyncio.timeout(budget):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                budget -= loop.time() - started
                if chunk.choices and chunk.choices[0].delta.content:
                    piece = chunk.choices[0].delta.content
                    received += len(piece)
                    yield piece
        except TimeoutError:
            raise LLMUnavailable(f"timeout after {self.timeout:g}s") from None
        except openai.APITimeoutError:
            raise LLMUnavailable(f"timeout after {self.timeout:g}s") from None
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"http {exc.status_code}") from None
        except openai.APIConnectionError:
            reason = "stream cut mid-way" if stream is not None else "endpoint unreachable"
            raise LLMUnavailable(reason) from None
        except openai.APIError as exc:
            raise LLMUnavailable(f"error event: {exc.message[:200]}") from None
        except Exception as exc:  # a malformed chunk from an odd server is still "unavailable"
            raise LLMUnavailable(f"unexpected {type(exc).__name__}") from None
        finally:
            if stream is not None:
                await stream.close()

    # --- checking what came back ------------------------------------------------------------
    def _finish(self, question: str, plan: _Plan, raw: str) -> Answer:
        body = strip_reasoning(raw).strip()
        if not body:
            raise LLMUnavailable("empty answer")
        if plan.guard.leaks(body):
            log.warning("model repeated its instructions; using extractive answer")
            metrics.llm_fallback("leak")
            return self.extractive.answer(question)
        body, order = clean_citations(neutralise_mentions(body), len(plan.hits))
        body = clip(body, MAX_ANSWER_CHARS)
        kept = cited_numbers(body)
        order = [item for new, item in enumerate(order, 1) if new in kept]
        if not order:
            log.info("model answer cites no item; using extractive answer")
            metrics.llm_fallback("uncited")
            return self.extractive.answer(question)
        sources = tuple(source_of(plan.hits[i - 1].article) for i in order)
        return Answer(answer=body, grounded=True, mode="llm", sources=sources)

    def _warn(self, exc: LLMUnavailable) -> None:
        metrics.llm_fallback("unavailable")
        log.warning("llm unavailable", extra={"reason": str(exc), "model": self.model})


class AnswerStream:
    """One streamed answer: iterate for safe text deltas, then read `result`.

    `result` is the checked Answer after iteration ends. On failure mid-stream it is the
    extractive answer (mode "extractive") and `error` holds the reason; the caller should
    replace whatever it showed with `result.answer`, which is also cut to length.
    """

    def __init__(self, owner: LLMAnswerer, question: str, history: list[dict[str, str]]) -> None:
        self._owner = owner
        self._question = question
        self._history = history
        self._iter: AsyncGenerator[str, None] | None = None
        self.result: Answer | None = None
        self.error: str | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        if self._iter is None:
            self._iter = self._run()
        return self._iter

    async def aclose(self) -> None:
        """Stop early (e.g. the user left) and release the HTTP stream at once."""
        if self._iter is not None:
            await self._iter.aclose()

    async def _run(self) -> AsyncGenerator[str, None]:
        owner = self._owner
        plan = owner._plan(self._question, self._history)
        if isinstance(plan, Answer):
            self.result = plan
            return
        cleaner = StreamCleaner(len(plan.hits))
        raw: list[str] = []
        recent = ""  # a new run of prompt words can only end in the latest text
        leaked = False
        try:
            async with aclosing(owner._deltas(plan.messages)) as deltas:
                async for piece in deltas:
                    raw.append(piece)
                    recent = (recent + piece)[-_LEAK_WINDOW:]
                    if plan.guard.leaks(recent):
                        leaked = True  # show no more; _finish swaps in the extractive answer
                        break
                    out = cleaner.feed(piece)
                    if out:
                        yield out
            if not leaked:
                tail = cleaner.flush()
                if tail:
                    yield tail
            self.result = owner._finish(self._question, plan, "".join(raw))
        except LLMUnavailable as exc:
            owner._warn(exc)
            self.error = str(exc)
            self.result = owner.extractive.answer(self._question)


def _flat(value: str) -> str:
    """One line, without our own delimiters, so an item cannot pose as another item."""
    return _TAG_RE.sub("", " ".join(value.split()))
