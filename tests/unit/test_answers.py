"""Extractive answers, bad input, follow-ups and /latest, on a real store built from feed items.

The items go through the real Ingestor (classification, story grouping, Korean index terms),
so these tests see what a user would: grounded answers with [n] citations, plain "I don't know"
for near misses (the right program but the wrong year or round), replies framed in the
asker's language, and no exception for any question text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.classify import Classifier
from bot.core.extractive import MAX_ANSWER_CHARS, ExtractiveAnswerer
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.models import Answer, FeedEntry, Target
from bot.core.retrieve import Retriever
from bot.core.service import MAX_QUESTION_CHARS, BotService
from storage.db import open_database
from storage.repositories import Store


def _entry(n: int, day: str, title: str, summary: str, lang: str = "en") -> FeedEntry:
    return FeedEntry(
        url=f"https://wire.example/{n}",
        title=title,
        summary=summary,
        published=datetime.fromisoformat(day).replace(tzinfo=UTC),
        source="Example Wire" if lang == "en" else "예시통신",
        feed_url="https://wire.example/feed.xml",
        lang=lang,
    )


KOREA = _entry(
    1,
    "2025-08-04",
    "South Korea names five teams for its sovereign foundation model program",
    "On August 4, 2025, South Korea's Ministry of Science and ICT picked five consortia led by "
    "Naver Cloud, Upstage, SK Telecom, NC AI and LG AI Research for its independent AI "
    "foundation model project. A first-round evaluation at the end of 2025 was to cut the "
    "field to four teams.",
)
KOREA_ROUND1 = _entry(
    2,
    "2026-01-15",
    "독자 AI 파운데이션 모델 1차 단계평가 결과 발표…두 팀 탈락",
    "과학기술정보통신부는 2026년 1월 15일 독자 AI 파운데이션 모델 1차 단계평가 결과를 "
    "발표했다. 세 팀이 2차 단계에 올랐고 두 팀이 탈락했다. 탈락한 팀은 추가 공모에 다시 "
    "도전할 수 있다.",
    lang="ko",
)
JAPAN = _entry(
    3,
    "2025-12-21",
    "Japan backs a domestic foundation model with about 1 trillion yen",
    "Japan's Ministry of Economy, Trade and Industry will provide about 1 trillion yen over "
    "five years from fiscal 2026 for a domestic foundation model built by a new "
    "SoftBank-led company.",
)
MISTRAL = _entry(
    4,
    "2025-09-09",
    "Mistral AI raises 1.7 billion euros in a round led by ASML",
    "Mistral AI closed a 1.7 billion euro funding round on September 9, 2025. ASML invested "
    "1.3 billion euros and took a stake of about 11%, becoming the French startup's largest "
    "shareholder.",
)
UAE = _entry(
    5,
    "2025-05-22",
    "Stargate UAE: G42 to build a 1-gigawatt AI campus cluster in Abu Dhabi",
    "G42 will build Stargate UAE in Abu Dhabi with OpenAI and Oracle. The first 200-megawatt "
    "cluster is expected to go live in 2026.",
)
SARVAM = _entry(
    6,
    "2025-06-20",
    "India's Sarvam AI receives 4,096 GPUs under the IndiaAI Mission",
    "Sarvam AI was given 4,096 Nvidia H100 GPUs from Yotta under the IndiaAI Mission to build "
    "a sovereign foundation model, @everyone.",
)
APPLE = _entry(
    7,
    "2025-09-01",
    "Apple sets a September event for its new phones",
    "Apple will show its new phones at an event on September 9 in Cupertino.",
)
ENTRIES = [KOREA, KOREA_ROUND1, JAPAN, MISTRAL, UAE, SARVAM, APPLE]

ASML_Q = "How much did ASML invest in Mistral AI?"


@dataclass
class World:
    store: Store
    extractive: ExtractiveAnswerer
    service: BotService


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    gazetteer = Gazetteer.load()
    store = Store(open_database(tmp_path_factory.mktemp("answers") / "answers.db"))
    counts = Ingestor(store, Classifier(gazetteer)).ingest(ENTRIES, source_id=None)
    assert counts.new == len(ENTRIES)
    extractive = ExtractiveAnswerer(Retriever(store.articles, gazetteer))
    yield World(store, extractive, BotService(store, gazetteer, extractive))
    store.close()


def cited(answer: Answer) -> list[str]:
    return [s.url for s in answer.sources]


# --- grounded answers ---------------------------------------------------------------------
def test_answer_quotes_the_figure_and_cites_its_source(world: World) -> None:
    result = world.extractive.answer(ASML_Q)

    assert result.grounded and result.mode == "extractive"
    assert "1.3 billion euros" in result.answer and "[1]" in result.answer
    assert cited(result)[0] == MISTRAL.url
    assert len(result.answer) <= MAX_ANSWER_CHARS


def test_two_part_question_gets_a_sentence_for_each_part(world: World) -> None:
    result = world.extractive.answer(
        "How much did ASML invest in Mistral AI, and what stake did it take?"
    )

    assert result.grounded
    assert "1.3 billion" in result.answer and "11%" in result.answer


def test_korean_question_on_an_english_source_is_framed_in_korean(world: World) -> None:
    result = world.extractive.answer("스타게이트 UAE의 첫 클러스터는 언제 가동될 예정인가요?")

    assert result.grounded
    assert "2026" in result.answer
    assert result.answer.startswith("영문 보도")  # the bot's own words are Korean
    assert cited(result) == [UAE.url]


def test_english_question_on_a_korean_source(world: World) -> None:
    result = world.extractive.answer(
        "How many teams advanced to the second stage of Korea's independent AI foundation "
        "model project?"
    )

    assert result.grounded
    assert "2차 단계에 올랐고" in result.answer  # quoted as written
    assert result.answer.startswith("From Korean-language reports")
    assert KOREA_ROUND1.url in cited(result)


def test_mentions_in_stored_text_never_ping(world: World) -> None:
    result = world.extractive.answer("How many GPUs did Sarvam AI get from Yotta?")

    assert result.grounded and "4,096" in result.answer
    assert "@everyone" not in result.answer


# --- declining ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question",
    [
        # the right actors, the wrong year
        "How much did ASML invest in Mistral AI in 2023?",
        # the right program, a round that has not happened
        "Which teams were eliminated in the third-round evaluation of Korea's independent AI "
        "foundation model project?",
        # the right program, a month and year of no event
        "Which teams were picked in August 2026 for Korea's independent AI foundation model "
        "project?",
        # a detail the store does not hold
        "What is the parameter count of the model Mistral AI released?",
        "In which city will Japan's new foundation model company be based?",
        "What is the price of bananas in Ecuador?",
    ],
)
def test_near_misses_are_declined(world: World, question: str) -> None:
    result = world.extractive.answer(question)

    assert result.grounded is False
    assert result.sources == ()
    assert "don't know" in result.answer


async def test_declining_offers_what_the_user_may_mean(world: World) -> None:
    reply = await world.service.ask(
        Target("console", "maybe"), "u", "How much did ASML invest in Mistral AI in 2023?"
    )

    assert reply.grounded is False
    assert "You may mean:" in reply.text and MISTRAL.url in reply.text


def test_korean_decline_is_in_korean(world: World) -> None:
    result = world.extractive.answer("미스트랄 AI는 2023년에 얼마를 투자받았나요?")

    assert result.grounded is False
    assert result.answer.startswith("모르겠습니다")


# --- bad input ------------------------------------------------------------------------------
_SYNTAX = re.compile(r"[\"*:^(){}\[\]+\-]|\b(?:NEAR|AND|OR|NOT)\b")


@pytest.mark.parametrize(
    "question",
    [
        '"How much did ASML invest in Mistral AI?',
        'How much did "ASML invest in Mistral AI?',
        "How much did ASML* invest in Mistral AI*?",
        "title: How much did ASML invest in Mistral AI?",
        "How much did ASML NEAR invest in Mistral AI?",
        "NEAR(ASML Mistral, 5) how much did ASML invest in Mistral AI?",
        "How much did ASML AND invest OR in NOT Mistral AI?",
        "How much did -ASML invest in Mistral-AI?",
        "^How much did ASML invest in (Mistral AI)?",
        "How much did {ASML} invest in [Mistral AI]? +",
        '"""" *** ::: ^^^ ((( )))',
        "AND OR NOT NEAR",
    ],
)
def test_search_syntax_answers_like_the_cleaned_question(world: World, question: str) -> None:
    cleaned = _SYNTAX.sub(" ", question)

    result = world.extractive.answer(question)

    expected = world.extractive.answer(cleaned)
    assert (result.grounded, result.answer, result.sources) == (
        expected.grounded,
        expected.answer,
        expected.sources,
    )


@pytest.mark.parametrize(
    "question",
    [
        "",
        "   ",
        "?",
        "\x00\x01\x02",
        "🤖🇰🇷 ???",
        "\u200b\u200e\u202e ASML",
        "ASML " * 3000,
        "한국" * 5000,
    ],
)
def test_odd_questions_never_raise(world: World, question: str) -> None:
    result = world.extractive.answer(question)

    assert isinstance(result.answer, str) and result.answer
    assert len(result.answer) <= MAX_ANSWER_CHARS


async def test_very_long_question_is_cut_with_a_note(world: World) -> None:
    question = ASML_Q + " " + "x" * 10_000

    result = await world.service.answer(question)

    assert result.answer.startswith("(Your question was long")
    assert str(MAX_QUESTION_CHARS) in result.answer
    assert result.grounded and "1.3 billion" in result.answer


async def test_empty_question_gets_a_hint(world: World) -> None:
    result = await world.service.answer("   ")

    assert result.grounded is False and "Ask me something" in result.answer
    reply = await world.service.handle_text(Target("console", "empty"), "u", "/ask")
    assert reply is not None and "Ask me something" in reply.text


# --- conversation ---------------------------------------------------------------------------
async def test_and_japan_follows_up_on_the_previous_question(world: World) -> None:
    key = "console:followup:u1"
    first = await world.service.answer(
        "How much will South Korea's government provide for its own foundation model?",
        memory_key=key,
    )
    second = await world.service.answer("and Japan?", memory_key=key)

    assert KOREA.url in cited(first) or not first.grounded
    assert second.grounded and cited(second)[0] == JAPAN.url
    assert "trillion yen" in second.answer
    history = world.store.conversations.get(key, 60)
    assert "Japan" in history[-1]["q"] and history[-1]["q"] != "and Japan?"


async def test_korean_follow_up_keeps_the_subject(world: World) -> None:
    key = "console:followup:u2"
    await world.service.answer(
        "독자 AI 파운데이션 모델 1차 단계평가는 언제 발표됐나요?", memory_key=key
    )
    second = await world.service.answer("그 평가 결과는?", memory_key=key)

    assert second.grounded
    assert cited(second)[0] == KOREA_ROUND1.url
    assert "탈락" in second.answer or "2차" in second.answer


async def test_memory_is_per_chat_and_expires(world: World) -> None:
    await world.service.answer(ASML_Q, memory_key="console:a:u")
    other_chat = await world.service.answer("and Japan?", memory_key="console:b:u")
    assert world.store.conversations.get("console:b:u", 60)[-1]["q"] == "and Japan?"
    assert MISTRAL.url not in cited(other_chat)

    world.store.db.execute("UPDATE conversations SET updated_at = 0 WHERE key = ?", ["console:a:u"])
    world.store.db.conn.commit()
    await world.service.answer("and what stake did it take?", memory_key="console:a:u")

    history = world.store.conversations.get("console:a:u", 60)
    assert history == [history[-1]] and history[-1]["q"] == "and what stake did it take?"


async def test_a_new_full_question_is_not_read_as_a_follow_up(world: World) -> None:
    key = "console:followup:u3"
    await world.service.answer(ASML_Q, memory_key=key)
    result = await world.service.answer(
        "What will Japan's ministry provide for a domestic foundation model?", memory_key=key
    )

    assert cited(result)[0] == JAPAN.url
    assert world.store.conversations.get(key, 60)[-1]["q"].startswith("What will Japan")


# --- /latest --------------------------------------------------------------------------------
def test_latest_lists_newest_stories_first(world: World) -> None:
    reply = world.service.latest()

    titles = [s.title for s in reply.sources]
    assert titles[0] == KOREA_ROUND1.title  # published last
    assert APPLE.title not in titles  # not about a national AI effort
    assert len(titles) == len(set(titles)) <= 5
    assert reply.text.splitlines()[0].startswith("1. ")


@pytest.mark.parametrize("arg", ["KR", "kr", "한국", "South Korea"])
def test_latest_for_a_country(world: World, arg: str) -> None:
    reply = world.service.latest(arg)

    urls = {s.url for s in reply.sources}
    assert urls and urls <= {KOREA.url, KOREA_ROUND1.url}


def test_latest_for_a_topic(world: World) -> None:
    reply = world.service.latest("funding")

    assert reply.sources
    for source in reply.sources:
        article = world.store.articles.by_url(source.url)
        assert article is not None and "funding" in article.topics


def test_latest_for_an_unknown_filter_says_so(world: World) -> None:
    reply = world.service.latest("Narnia")

    assert "I don't know the country or topic 'Narnia'" in reply.text
    assert "Topics:" in reply.text and not reply.sources


async def test_latest_through_a_typed_command(world: World, tmp_path: Path) -> None:
    reply = await world.service.handle_text(Target("console", "cmd"), "u", "/latest JP")

    assert reply is not None and [s.url for s in reply.sources] == [JAPAN.url]
