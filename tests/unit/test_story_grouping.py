"""Story grouping through the real classifier, ingestor and SQLite store.

The reports below are written for these tests (a made-up second round of Korea's foundation
model programme and a GPU allocation three weeks later): they share the programme's actors, as
real reports of neighbouring events do, so the tests show what tells two events apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.core.classify import Classifier
from bot.core.cluster import decode_members, encode_members, time_factor
from bot.core.datemention import full_dates, month_day_tokens
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Batch, Ingestor
from bot.core.models import FeedEntry
from storage.db import open_database
from storage.repositories import Store


def _entry(key: str, day: str | None, title: str, summary: str, lang: str = "en") -> FeedEntry:
    return FeedEntry(
        url=f"https://wire.example/{key}",
        title=title,
        summary=summary,
        published=datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None,
        source="Example Wire" if lang == "en" else "예시통신",
        feed_url="https://wire.example/feed.xml",
        lang=lang,
    )


ROUND2_EN = _entry(
    "round2-en",
    "2026-07-10",
    "Korea's sovereign AI contest cuts Upstage in second round; LG and SK Telecom advance",
    "South Korea's Ministry of Science and ICT said on July 10, 2026 that LG AI Research and "
    "SK Telecom passed the second-stage evaluation of the independent AI foundation model "
    "project, while Upstage was eliminated after scoring 71.4 points.",
)
ROUND2_KO = _entry(
    "round2-ko",
    "2026-07-10",
    "독자 AI 파운데이션 모델 2차 평가…LG AI연구원·SK텔레콤 통과, 업스테이지 탈락",
    "과학기술정보통신부는 2026년 7월 10일 독자 AI 파운데이션 모델 2차 단계평가 결과 LG "
    "AI연구원과 SK텔레콤이 통과했고 업스테이지는 71.4점으로 탈락했다고 밝혔다.",
    lang="ko",
)
ROUND2_UNDATED = _entry(
    "round2-undated",
    None,
    "Upstage drops out of Korea's national model race at the second evaluation",
    "The science ministry announced on July 10, 2026 that Upstage scored 71.4 points and "
    "left the independent AI foundation model project; LG AI Research and SK Telecom go on.",
)
GPUS_EN = _entry(
    "gpus-en",
    "2026-07-31",
    "Korea allocates 12,000 Nvidia GPUs to its two remaining foundation model teams",
    "The Ministry of Science and ICT will give LG AI Research and SK Telecom 6,000 Nvidia "
    "B300 GPUs each from the national compute centre from August 17, the ministry said on "
    "July 31, 2026.",
)
GPUS_KO = _entry(
    "gpus-ko",
    "2026-07-31",
    "과기정통부, 독자 AI 두 팀에 엔비디아 GPU 1만2000장 배분",
    "과학기술정보통신부는 2026년 7월 31일 LG AI연구원과 SK텔레콤에 엔비디아 B300 GPU를 "
    "6,000장씩 8월 17일부터 국가 컴퓨팅 센터에서 지원한다고 밝혔다.",
    lang="ko",
)
ROUND3 = _entry(
    "round3",
    "2026-11-20",
    "LG AI Research and SK Telecom enter the final round of Korea's foundation model project",
    "The Ministry of Science and ICT opened the third-stage evaluation of the independent AI "
    "foundation model project for LG AI Research and SK Telecom on November 20, 2026.",
)
MISTRAL = _entry(
    "mistral",
    "2026-07-10",
    "France's Mistral AI opens a sovereign data centre near Paris",
    "Mistral AI opened a data centre south of Paris on July 10, 2026 with 18,000 Nvidia GPUs, "
    "backed by the French government's national AI strategy.",
)


# Earlier news of the same programme, months before: a store that has followed the programme
# knows its usual actors are common, which is what lets figures and dates tell events apart.
EARLIER = [
    _entry(
        f"earlier-{month}",
        f"2026-0{month}-0{month}",
        f"Korea's foundation model project: {what}",
        f"The Ministry of Science and ICT said LG AI Research, SK Telecom and Upstage {detail} "
        "in the independent AI foundation model project.",
    )
    for month, what, detail in [
        (1, "teams sign support agreements", "signed agreements worth 45 billion won each"),
        (2, "a data-sharing pact is agreed", "will share 3 petabytes of public data"),
        (3, "a talent scheme opens", "will each host 20 graduate researchers"),
        (4, "open-weight releases are required", "must publish weights within 90 days"),
        (5, "the evaluation panel is named", "will face a panel of 15 outside experts"),
    ]
]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.load()


@pytest.fixture
def store(tmp_path: Path, gazetteer: Gazetteer) -> Store:
    store = Store(open_database(tmp_path / "groups.db"))
    Ingestor(store, Classifier(gazetteer)).ingest(EARLIER, source_id=None)
    return store


def _stories(store: Store) -> dict[str, str]:
    rows = store.db.execute("SELECT url, story_id FROM articles").fetchall()
    return {url.rsplit("/", 1)[1]: sid for url, sid in rows}


def test_reports_of_one_event_share_a_story_across_languages_and_dates(
    store: Store, gazetteer: Gazetteer
) -> None:
    Ingestor(store, Classifier(gazetteer)).ingest(
        [ROUND2_EN, ROUND2_KO, ROUND2_UNDATED, GPUS_EN, GPUS_KO, MISTRAL], source_id=None
    )
    story = _stories(store)
    assert story["round2-en"] == story["round2-ko"] == story["round2-undated"]
    assert story["gpus-en"] == story["gpus-ko"]
    # Same programme, same actors, three weeks apart: two events, not one.
    assert story["gpus-en"] != story["round2-en"]
    assert story["mistral"] not in {story["round2-en"], story["gpus-en"]}


def test_a_report_months_later_opens_its_own_story(store: Store, gazetteer: Gazetteer) -> None:
    Ingestor(store, Classifier(gazetteer)).ingest([ROUND2_EN, ROUND3], source_id=None)
    story = _stories(store)
    assert story["round3"] != story["round2-en"]


def test_feeds_read_in_any_order_group_the_same(tmp_path: Path, gazetteer: Gazetteer) -> None:
    """Later reports first (as when a slow feed answers last) give the same stories."""
    groupings = []
    for n, feeds in enumerate(
        [
            [[ROUND2_EN, ROUND2_UNDATED], [GPUS_EN], [ROUND2_KO, GPUS_KO]],
            [[GPUS_KO, ROUND2_KO], [GPUS_EN], [ROUND2_UNDATED, ROUND2_EN]],
        ]
    ):
        store = Store(open_database(tmp_path / f"order{n}.db"))
        ingestor = Ingestor(store, Classifier(gazetteer))
        ingestor.ingest(EARLIER, source_id=None)
        ingestor.ingest_many([Batch(f, None) for f in feeds])
        story = _stories(store)
        groupings.append({frozenset(k for k in story if story[k] == s) for s in story.values()})
    assert {"round2-en", "round2-ko", "round2-undated"} in groupings[0]
    assert groupings[0] == groupings[1]


def test_grouping_survives_a_restart(store: Store, gazetteer: Gazetteer) -> None:
    """A new process seeds its index from the store: a later report joins the old story."""

    def clock() -> datetime:
        return datetime(2026, 8, 2, tzinfo=UTC)  # the stories are recent news then

    Ingestor(store, Classifier(gazetteer), clock=clock).ingest([ROUND2_EN, GPUS_EN], source_id=None)
    Ingestor(store, Classifier(gazetteer), clock=clock).ingest([ROUND2_KO, GPUS_KO], source_id=None)
    story = _stories(store)
    assert story["round2-ko"] == story["round2-en"]
    assert story["gpus-ko"] == story["gpus-en"]
    row = store.articles.story(story["round2-en"])
    assert row is not None and row.article_count == 2


def test_signatures_round_trip_and_old_ones_still_read() -> None:
    when = datetime(2026, 7, 10, 9, tzinfo=UTC)
    members = decode_members("eupstage n71.4 Wsecond", ["KR"], when)  # written before members
    assert len(members) == 1 and members[0].days == {date(2026, 7, 10)}
    assert members[0].print.entities == {"upstage"} and "n71.4" in members[0].print.numbers
    again = decode_members(encode_members(members), ["KR"], None)
    assert again[0].days == members[0].days and again[0].print == members[0].print


def test_time_discounts_distance_and_unknown_dates() -> None:
    day = date(2026, 7, 10)
    assert time_factor(frozenset({day}), frozenset({day})) == 1.0
    assert time_factor(frozenset({day}), frozenset({date(2026, 7, 24)})) == 0.5
    assert time_factor(frozenset({day}), frozenset({date(2026, 9, 30)})) == 0.0
    assert 0 < time_factor(frozenset(), frozenset({day})) < 1


def test_dates_named_in_the_text() -> None:
    text = (
        "On July 10, 2026 the ministry spoke; 2 August 2026 follows. 2026년 7월 17일 발표, "
        "8월 3일부터. The market 5 rose; teams may 12 apply. Also 2026-02-30 (not a date)."
    )
    assert full_dates(text) == {date(2026, 7, 10), date(2026, 8, 2), date(2026, 7, 17)}
    assert month_day_tokens(text) >= {"d0710", "d0802", "d0717", "d0803"}
    assert "d0305" not in month_day_tokens(text)  # "market 5" is not March 5


def test_stories_past_the_horizon_are_not_reopened(store: Store, gazetteer: Gazetteer) -> None:
    """A long-running process forgets what a restart would not seed: the same answer either way."""
    now = [datetime(2026, 7, 12, tzinfo=UTC)]
    ingestor = Ingestor(store, Classifier(gazetteer), clock=lambda: now[0])
    ingestor.ingest([ROUND2_EN], source_id=None)
    now[0] = datetime(2026, 7, 13, tzinfo=UTC)
    ingestor.ingest([ROUND2_KO], source_id=None)  # within the horizon: joins
    now[0] = datetime(2026, 10, 15, tzinfo=UTC)  # three months on
    ingestor.ingest([GPUS_EN], source_id=None)  # any batch lets the old stories go
    ingestor.ingest([ROUND2_UNDATED], source_id=None)
    restarted = Ingestor(store, Classifier(gazetteer), clock=lambda: now[0])
    late = _entry("round2-late", None, ROUND2_UNDATED.title, ROUND2_UNDATED.summary)
    restarted.ingest([late], source_id=None)
    story = _stories(store)
    assert story["round2-ko"] == story["round2-en"]
    assert story["round2-undated"] != story["round2-en"]
    assert story["round2-late"] != story["round2-en"]
