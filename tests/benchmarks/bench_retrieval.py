"""Retrieval and answer benchmark on generated stores of 100,000 and 1,000,000 articles.

Prints, for the same questions on the same database:
- retrieval p95 (Retriever.search: parse, expanded FTS5 query, re-rank, one hit per story) as a
  ratio of raw FTS5 `MATCH <question words OR-ed> ORDER BY rank LIMIT 10` p95
  (targets: ratio <= 2.0 and <= 40 ms);
- retrieval p95 at 1,000,000 articles as a ratio of p95 at 100,000 (target <= 3; the store's
  newest 100,000 sit in the recency window, the rest are older);
- extractive answer p95 (target <= 100 ms).

Articles are written with executemany straight into the store's tables (the FTS triggers
index them), about 60 words each: a fifth about national AI efforts (names from the
gazetteer, a fifth of them Korean), the rest general news in Zipf-distributed words, as a store
fed by general outlets holds.

Run: python tests/benchmarks/bench_retrieval.py [--articles 100000] [--big 1000000] [--skip-big]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core.extractive import ExtractiveAnswerer
from bot.core.gazetteer import Gazetteer
from bot.core.question import QUESTION_WORDS
from bot.core.retrieve import Retriever
from bot.core.textindex import STOPWORDS, entity_token, fts_or_query, index_terms, words
from storage.db import open_database
from storage.repositories import Store

ACTORS = [
    ("France's Mistral AI", "FR", "mistral"),
    ("South Korea's science ministry", "KR", "msit"),
    ("Naver Cloud", "KR", "naver"),
    ("LG AI Research", "KR", "lg-ai-research"),
    ("SK Telecom", "KR", "skt"),
    ("Upstage", "KR", "upstage"),
    ("India's IndiaAI Mission", "IN", "indiaai"),
    ("Sarvam AI", "IN", "sarvam"),
    ("Japan's economy ministry", "JP", "meti"),
    ("Sakana AI", "JP", "sakana"),
    ("SoftBank", "JP", "softbank"),
    ("The European Commission", "EU", "eu-commission"),
    ("Abu Dhabi's G42", "AE", "g42"),
    ("The Technology Innovation Institute", "AE", "tii"),
    ("Saudi Arabia's HUMAIN", "SA", "humain"),
    ("The UK government", "GB", "uk-gov"),
    ("Canada's innovation ministry", "CA", "ised"),
    ("Taiwan's science council", "TW", "nstc"),
    ("Germany's Deutsche Telekom", "DE", "deutsche-telekom"),
    ("Switzerland's ETH Zurich", "CH", "eth"),
    ("Singapore's AI Singapore", "SG", "aisg"),
    ("China's State Council", "CN", "cn-state-council"),
    ("The US Department of Energy", "US", "doe"),
    ("Spain's Barcelona Supercomputing Center", "ES", "bsc"),
    ("Poland's digital ministry", "PL", "pl-digital"),
]
ACTIONS = [
    "announces a {n} billion euro plan for sovereign AI compute",
    "opens a national supercomputer with {n},000 GPUs",
    "releases an open-weight foundation model with {n}B parameters",
    "publishes a national AI strategy with a {n} million fund",
    "picks {n} teams for its foundation model program",
    "signs a data centre partnership worth {n} billion dollars",
    "sets rules for general-purpose AI models from {m} {y}",
    "names the winners of its {o} round of GPU grants",
    "starts a {n} million programme to train AI researchers",
    "backs a startup building a language model for local languages",
    "orders {n},000 accelerators for a public AI cloud",
    "reviews the safety of frontier models with a new institute",
    "agrees a chip supply deal for {n} data centres",
    "funds a public dataset of {n} million documents",
    "launches a sovereign cloud for government agencies",
    "evaluates {n} consortia in the {o} stage of its model contest",
]
DETAILS = [
    "Officials said {n} partners, including universities and startups, were involved.",
    "The first phase is due to go live in {m} {y}, with more capacity planned later.",
    "Critics questioned the cost, put at about {n} million euros over five years.",
    "The government will review the teams in stages and drop the weakest each round.",
    "The chips come from Nvidia and will be installed in a new data centre near the capital.",
    "The model supports {n} languages and was trained on local news and public records.",
    "Energy for the site will come from nuclear and hydro power under a long-term contract.",
    "Researchers can apply for free compute time through an online portal.",
    "The minister called it a step toward technological independence.",
    "Opposition lawmakers asked for more oversight of how the money is spent.",
    "Several firms said they would move workloads from foreign clouds.",
    "The plan follows a consultation with more than {n} organisations.",
    "Benchmarks put the system among the {n} fastest in the world.",
    "A second call for proposals is expected in {m} {y}.",
]
KO_ACTORS = [
    ("과학기술정보통신부", "KR", "msit"),
    ("네이버클라우드", "KR", "naver"),
    ("LG AI연구원", "KR", "lg-ai-research"),
    ("업스테이지", "KR", "upstage"),
    ("SK텔레콤", "KR", "skt"),
    ("KT", "KR", "kt"),
    ("카카오", "KR", "kakao"),
    ("정보통신산업진흥원", "KR", "nipa"),
]
KO_ACTIONS = [
    "독자 AI 파운데이션 모델 {n}차 단계평가 결과를 발표했다",
    "국가AI컴퓨팅센터에 GPU {n}천 장을 도입한다",
    "인공지능 기본법 시행령 {n}개 조항을 공개했다",
    "정예팀 {n}곳을 추가로 선정했다",
    "소버린 AI 데이터센터 구축에 {n}억 원을 투자한다",
    "공공 AI 학습용 데이터 {n}만 건을 개방했다",
]
KO_DETAILS = [
    "관계자는 이번 발표가 {n}개 기관과 협력한 결과라고 밝혔다.",
    "평가는 벤치마크 {n}점, 전문가 평가, 사용자 평가로 구성됐다.",
    "탈락한 팀은 다음 공모에 다시 도전할 수 있다.",
    "정부는 내년까지 관련 예산을 {n}% 늘릴 계획이다.",
    "업계는 해외 모델 의존도를 낮출 수 있을 것으로 기대했다.",
]
MONTHS = ["January", "March", "May", "August", "October", "December"]
ORDINALS = ["first", "second", "third"]
OTHER = [
    "A local bakery wins the regional cup after {n} matches in a row",
    "A phone maker launches a handset with a {n} MP camera and a bigger battery",
    "Quarterly revenue at a retailer rose {n} percent on holiday sales",
    "City council approves a new bus line with {n} stops",
    "Storm cuts power to {n},000 homes along the coast",
    "Film festival opens with a record {n} premieres",
    "Central bank holds rates at {n} percent",
    "Museum reopens after a {n} million renovation",
    "Marathon draws {n},000 runners despite the heat",
    "School district hires {n} new teachers",
]

QUESTIONS = [
    "How many GPUs does India's IndiaAI Mission supercomputer have?",
    "What did Mistral AI announce about sovereign AI compute?",
    "How much is South Korea's science ministry investing in its national AI strategy?",
    "Which teams did Japan's economy ministry pick for its foundation model program?",
    "When will Abu Dhabi's G42 supercomputer go live?",
    "How many parameters does Sakana AI's open-weight foundation model have?",
    "What rules did the European Commission set for general-purpose AI models?",
    "Who won the second round of Canada's GPU grants?",
    "How big is Saudi Arabia's HUMAIN data centre partnership?",
    "How many languages does Taiwan's foundation model support?",
    "What did the UK government publish in its national AI strategy?",
    "Which partners worked with Naver Cloud on its supercomputer?",
    "What is the latest news on LG AI Research's foundation model?",
    "How much did SK Telecom's data centre partnership cost?",
    "Who picked the teams for Korea's sovereign AI program?",
    "독자 AI 파운데이션 모델 2차 단계평가 결과는 어떻게 나왔나요?",
    "국가AI컴퓨팅센터에 도입하는 GPU는 몇 장인가요?",
    "네이버클라우드는 정예팀으로 선정됐나요?",
    "인공지능 기본법 시행령은 몇 개 조항인가요?",
    "업스테이지가 발표한 평가 결과는?",
]


def _vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    """Pseudo-words for general news, drawn by rank with a Zipf law like real text."""
    syllables = "ka lo mi ten ra vo sen ti mar que bel do fra gu nes pol ri sta un zo ver ha"
    syllables += " lin cor"
    parts = syllables.split()
    out: set[str] = set()
    while len(out) < size:
        out.add("".join(rng.choice(parts) for _ in range(rng.randint(2, 4))))
    return sorted(out)


def _zipf_words(rng: random.Random, vocab: list[str], count: int) -> str:
    return " ".join(
        vocab[min(int(rng.paretovariate(1.1)) - 1, len(vocab) - 1)] for _ in range(count)
    )


def _articles(
    rng: random.Random, count: int, start: int, newest: datetime, span_days: float
) -> Iterator[tuple[tuple[object, ...], tuple[object, ...]]]:
    """(story row, article row) pairs, oldest first, fetched over `span_days` up to `newest`.

    A fifth are about national AI efforts (a fifth of those in Korean); the rest are general
    news, as a store fed by general outlets holds."""
    vocab = _vocabulary(random.Random(11))
    for i in range(count):
        seq = start + i
        when = newest - timedelta(days=span_days * (count - i) / count)
        n = rng.randint(2, 99)
        fill = {
            "n": n,
            "m": rng.choice(MONTHS),
            "y": rng.choice(["2025", "2026", "2027"]),
            "o": rng.choice(ORDINALS),
        }
        roll = rng.random()
        country, entity = "", ""
        if roll < 0.04:
            actor, country, entity = rng.choice(KO_ACTORS)
            title = f"{actor}, {rng.choice(KO_ACTIONS).format(**fill)}"
            body = " ".join(d.format(**fill) for d in rng.sample(KO_DETAILS, 2))
            lang, relevant = "ko", 1
        elif roll < 0.2:
            actor, country, entity = rng.choice(ACTORS)
            title = f"{actor} {rng.choice(ACTIONS).format(**fill)}"
            body = " ".join(d.format(**fill) for d in rng.sample(DETAILS, 2))
            body += " " + _zipf_words(rng, vocab, 15) + "."
            lang, relevant = "en", 1
        else:
            if rng.random() < 0.3:
                title = rng.choice(OTHER).format(**fill)
            else:
                title = _zipf_words(rng, vocab, 7).capitalize()
            body = _zipf_words(rng, vocab, 45) + "."
            lang, relevant = "en", 0
        summary = f"{title}. {body}"
        story = f"s{seq // 2:09d}"
        stamp = when.isoformat(timespec="seconds")
        entities = [entity] if entity else []
        terms = index_terms(f"{title}\n{summary}", [entity_token(e) for e in entities])
        yield (
            (story, title, f"https://gen.example/{seq}", json.dumps([country] if country else []),
             stamp, stamp),
            (f"g{seq:09d}", f"https://gen.example/{seq}", "Generated Wire", title, summary,
             stamp, stamp, lang, relevant, json.dumps([country] if country else []),
             json.dumps(["compute"]), json.dumps(entities), story, terms),
        )  # fmt: skip


def fill(store: Store, count: int, start: int, newest: datetime, span_days: float) -> float:
    """Insert `count` generated articles; returns the seconds it took."""
    rng = random.Random(start)
    conn = store.db.conn
    began = time.perf_counter()
    batch_s: list[tuple[object, ...]] = []
    batch_a: list[tuple[object, ...]] = []

    def flush() -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO stories(id, title, url, countries, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            batch_s,
        )
        conn.executemany(
            "INSERT INTO articles(id, url, source, title, summary, published, fetched_at, lang, "
            "relevant, countries, topics, entities, story_id, terms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch_a,
        )
        conn.commit()
        batch_s.clear()
        batch_a.clear()

    for story_row, article_row in _articles(rng, count, start, newest, span_days):
        batch_s.append(story_row)
        batch_a.append(article_row)
        if len(batch_a) >= 20_000:
            flush()
    flush()
    return time.perf_counter() - began


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


def timed(
    fn: Callable[[str], object], questions: list[str], rounds: int, before: Callable[[], None]
) -> list[float]:
    out: list[float] = []
    for _ in range(rounds):
        for q in questions:
            before()
            began = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - began) * 1000)
    return out


def raw_query(question: str) -> str:
    """The question's own words OR-ed, as a naive FTS5 search would do."""
    return fts_or_query(
        w for w in words(question) if w not in STOPWORDS and w not in QUESTION_WORDS
    )


def measure(store: Store, gazetteer: Gazetteer, rounds: int) -> dict[str, float]:
    """p95s in ms. "cold": every question starts with no article read yet (the features of
    the pooled articles are computed within the timing); "warm": the same questions again."""
    retriever = Retriever(store.articles, gazetteer)
    answerer = ExtractiveAnswerer(retriever)
    conn: sqlite3.Connection = store.db.conn

    def raw(question: str) -> object:
        sql = "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rank LIMIT 10"
        return conn.execute(sql, [raw_query(question)]).fetchall()

    def search(question: str) -> object:
        return retriever.search(question, limit=6)

    def nothing() -> None:
        return None

    for q in QUESTIONS:  # warm the page cache and the lexicon once, as a running bot is
        raw(q)
        search(q)
    raw_ms = timed(raw, QUESTIONS, rounds, nothing)
    cold_ms = timed(search, QUESTIONS, rounds, retriever.forget)
    warm_ms = timed(search, QUESTIONS, rounds, nothing)
    answer_ms = timed(answerer.answer, QUESTIONS, rounds, retriever.forget)
    grounded = sum(answerer.answer(q).grounded for q in QUESTIONS)
    return {
        "raw_p95": p95(raw_ms),
        "search_p95": p95(cold_ms),
        "warm_p95": p95(warm_ms),
        "answer_p95": p95(answer_ms),
        "grounded": grounded,
    }


def report(label: str, n: int, figures: dict[str, float]) -> None:
    ratio = figures["search_p95"] / figures["raw_p95"]
    print(
        f"[{label}] articles={n:,} raw_fts_p95={figures['raw_p95']:.1f}ms "
        f"retrieval_p95={figures['search_p95']:.1f}ms ratio={ratio:.2f} "
        f"(target <= 2.0 and <= 40 ms; warm cache {figures['warm_p95']:.1f}ms) "
        f"answer_p95={figures['answer_p95']:.1f}ms (target <= 100 ms) "
        f"grounded={figures['grounded']:.0f}/{len(QUESTIONS)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gazetteer = Gazetteer.load()
    now = datetime.now(UTC)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        small = Store(open_database(Path(tmp) / "small.db"))
        built = fill(small, args.articles, 1, now, span_days=300)
        print(f"built {args.articles:,} articles in {built:.0f}s")
        base = measure(small, gazetteer, args.rounds)
        report("base", args.articles, base)
        small.close()
        if not args.skip_big and args.big > args.articles:
            big = Store(open_database(Path(tmp) / "big.db"))
            old = args.big - args.articles
            # Older history first (years back), then the same recent months as the small store.
            built = fill(big, old, 1, now - timedelta(days=420), span_days=3000)
            built += fill(big, args.articles, old + 1, now, span_days=300)
            print(f"built {args.big:,} articles in {built:.0f}s")
            grown = measure(big, gazetteer, args.rounds)
            report("big", args.big, grown)
            growth = grown["search_p95"] / base["search_p95"]
            print(
                f"retrieval_p95_ratio_big_to_base={growth:.2f} (target <= 3) "
                f"answer_p95_ratio={grown['answer_p95'] / base['answer_p95']:.2f}"
            )
            big.close()
    print(f"total runtime {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
