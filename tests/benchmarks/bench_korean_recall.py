"""Korean recall: 50 Korean queries (half two-syllable nouns) against stored Korean items.

Each query noun appears in exactly one stored item, written with a particle or ending attached
(국가가, 인공지능을, 반도체와), as Korean news writes it. A query is found when that item is in
the top 10. Prints our recall and, for reference, plain unicode61 over title+summary only.

Run: python tests/benchmarks/bench_korean_recall.py
"""

from __future__ import annotations

import random
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core.classify import Classifier
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.models import FeedEntry
from bot.core.retrieve import Retriever
from bot.core.textindex import fts_or_query
from storage.db import open_database
from storage.repositories import Store

TWO = [
    "국가",
    "정부",
    "예산",
    "인재",
    "전략",
    "반도",
    "협력",
    "투자",
    "규제",
    "보안",
    "평가",
    "모델",
    "기업",
    "산업",
    "교육",
    "연구",
    "의료",
    "금융",
    "국방",
    "통신",
    "특허",
    "수출",
    "세금",
    "법안",
    "표준",
]
LONG = [
    "인공지능",
    "반도체",
    "데이터센터",
    "슈퍼컴퓨터",
    "파운데이션",
    "클라우드",
    "스타트업",
    "컨소시엄",
    "과학기술",
    "정보통신",
    "양자컴퓨팅",
    "오픈소스",
    "거대언어모델",
    "자율주행",
    "디지털전환",
    "개인정보",
    "저작권",
    "사이버보안",
    "로봇공학",
    "전력망",
    "탄소중립",
    "공공기관",
    "지방자치",
    "중소기업",
    "벤처투자",
]
PARTICLES = [
    "이",
    "가",
    "을",
    "를",
    "은",
    "는",
    "의",
    "에",
    "에서",
    "으로",
    "와",
    "과",
    "도",
    "만",
    "에게",
    "까지",
]
FILLER = [
    "올해",
    "관계자는",
    "발표했다",
    "계획이다",
    "밝혔다",
    "추진한다",
    "지원한다",
    "확대한다",
    "검토",
    "예정",
    "회의",
    "이후",
    "현장",
    "대상",
    "방안",
]


def main() -> None:
    rng = random.Random(11)
    queries = TWO + LONG
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(open_database(Path(tmp) / "ko.db"))
        gazetteer = Gazetteer.load()
        ingestor = Ingestor(store, Classifier(gazetteer))
        entries = []
        for i, noun in enumerate(queries):
            particle = rng.choice(PARTICLES)
            words = [*rng.sample(FILLER, 5), noun + particle, *rng.sample(FILLER, 4)]
            rng.shuffle(words)
            entries.append(
                FeedEntry(
                    url=f"https://ko.example/{i}",
                    title=" ".join(words[:5]),
                    summary=" ".join(words[5:]) + ".",
                    published=datetime.now(UTC),
                    source="bench",
                    feed_url="bench",
                    lang="ko",
                )
            )
        for j in range(400):  # distractors without any query noun
            entries.append(
                FeedEntry(
                    url=f"https://ko.example/d{j}",
                    title=" ".join(rng.sample(FILLER, 6)),
                    summary=" ".join(rng.sample(FILLER, 8)),
                    published=datetime.now(UTC),
                    source="bench",
                    feed_url="bench",
                    lang="ko",
                )
            )
        ingestor.ingest(entries, source_id=None)
        retriever = Retriever(store.articles, gazetteer)
        found = baseline = found_two = 0
        for i, noun in enumerate(queries):
            target = f"https://ko.example/{i}"
            hits = retriever.search(noun, limit=10)
            ok = any(h.article.url == target for h in hits)
            found += ok
            found_two += ok and noun in TWO
            rows = store.db.execute(
                "SELECT a.url FROM articles_fts f JOIN articles a ON a.seq = f.rowid "
                "WHERE articles_fts MATCH ? ORDER BY rank LIMIT 10",
                ["{title summary}: " + fts_or_query([noun])],
            ).fetchall()
            baseline += any(r[0] == target for r in rows)
        n = len(queries)
        print(
            f"korean_recall={found / n:.2f} ({found}/{n}; target >= 0.9) "
            f"two_syllable={found_two}/{len(TWO)}"
        )
        print(f"reference: plain unicode61 on title+summary recall={baseline / n:.2f}")


if __name__ == "__main__":
    main()
