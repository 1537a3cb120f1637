"""What the bot adds on top of the model: per-answer overhead and first-token latency.

Run: `python tests/benchmarks/bench_llm_overhead.py [--answers 200]`.
A local fake OpenAI-compatible endpoint answers at once. Each round times the bot's
`LLMAnswerer.answer` (retrieval, prompt, streaming, checks) and, right after, a bare openai
client streaming the very same request; the difference is the bot's own overhead. A second
pass streams answers and times the gap between the endpoint writing its first content chunk
and the first text the caller receives. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import openai

from bot.core.classify import Classifier
from bot.core.extractive import ExtractiveAnswerer
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.llm import LLMAnswerer
from bot.core.retrieve import Retriever
from storage.db import open_database
from storage.repositories import Store
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.test_llm_answers import ENTRIES, GPU_Q, KOREA_Q, KOREAN_Q

OVERHEAD_TARGET_MS = 20.0
FIRST_TOKEN_TARGET_MS = 50.0
QUESTIONS = (KOREA_Q, GPU_Q, KOREAN_Q)
REPLY = (
    "Five consortia were chosen to build national foundation models [1], and the government "
    "pays for the GPUs they train on [1]. Other programs fund compute as well [2]."
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bare_call(client: openai.AsyncOpenAI, body: dict[str, Any]) -> str:
    stream = await client.chat.completions.create(
        model=body["model"], messages=body["messages"], stream=True
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    return "".join(parts)


async def run(answers: int) -> tuple[list[float], list[float], list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(open_database(Path(tmp) / "bench.db"))
        gazetteer = Gazetteer.load()
        Ingestor(store, Classifier(gazetteer)).ingest(ENTRIES, source_id=None)
        retriever = Retriever(store.articles, gazetteer)
        extractive = ExtractiveAnswerer(retriever)
        async with FakeOpenAI(lambda m: REPLY) as server:
            llm = LLMAnswerer(
                retriever=retriever,
                extractive=extractive,
                base_url=server.base_url,
                api_key="bench",
                model="fake-model",
            )
            bare = openai.AsyncOpenAI(base_url=server.base_url, api_key="bench", max_retries=1)
            overhead: list[float] = []
            beyond_server: list[float] = []
            for i in range(answers + 10):  # the first rounds warm up connections and caches
                question = QUESTIONS[i % len(QUESTIONS)]
                t0 = time.perf_counter()
                result = await llm.answer(question, [])
                t_bot = time.perf_counter() - t0
                assert result.mode == "llm", result
                served = server.timings[-1]
                assert served.finished is not None
                t0 = time.perf_counter()
                await bare_call(bare, server.requests[-1])
                t_bare = time.perf_counter() - t0
                if i >= 10:
                    overhead.append((t_bot - t_bare) * 1000)
                    beyond_server.append((t_bot - (served.finished - served.started)) * 1000)

            server.chunk_delay = 0.001  # let the endpoint yield between chunks, like a model
            first_gap: list[float] = []
            end_to_end: list[float] = []
            for i in range(answers + 10):
                stream = llm.stream(QUESTIONS[i % len(QUESTIONS)], [])
                t0 = time.perf_counter()
                first_at: float | None = None
                async for _delta in stream:
                    if first_at is None:
                        first_at = time.perf_counter()
                assert stream.result is not None and stream.result.mode == "llm"
                served = server.timings[-1]
                assert first_at is not None and served.first_chunk is not None
                if i >= 10:
                    first_gap.append((first_at - served.first_chunk) * 1000)
                    end_to_end.append((first_at - t0) * 1000)
            await bare.close()
            await llm.close()
        store.close()
    return overhead, beyond_server, first_gap, end_to_end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=200)
    args = parser.parse_args()
    started = time.monotonic()
    overhead, beyond_server, first_gap, end_to_end = asyncio.run(run(args.answers))
    print(f"llm_bench answers={args.answers} elapsed={time.monotonic() - started:.1f}s")
    print(
        f"llm_overhead_ms p50={statistics.median(overhead):.2f} p95={pct(overhead, 0.95):.2f} "
        f"(target <= {OVERHEAD_TARGET_MS:g}; bot answer minus bare openai call, same request)"
    )
    print(
        f"llm_total_minus_server_ms p50={statistics.median(beyond_server):.2f} "
        f"p95={pct(beyond_server, 0.95):.2f} (includes the openai client and HTTP itself)"
    )
    print(
        f"first_token_to_adapter_ms p50={statistics.median(first_gap):.2f} "
        f"p95={pct(first_gap, 0.95):.2f} (target <= {FIRST_TOKEN_TARGET_MS:g})"
    )
    print(
        f"question_to_first_text_ms p50={statistics.median(end_to_end):.2f} "
        f"p95={pct(end_to_end, 0.95):.2f}"
    )
    ok = pct(overhead, 0.95) <= OVERHEAD_TARGET_MS and pct(first_gap, 0.95) <= FIRST_TOKEN_TARGET_MS
    print("llm_bench PASS" if ok else "llm_bench FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
