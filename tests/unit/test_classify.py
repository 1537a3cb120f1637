"""Behaviour of the offline relevance/country/topic classifier."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.core.classify import Classifier
from bot.core.models import TOPICS

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier()


def test_korean_ministry_and_champion_is_relevant_korea(clf: Classifier) -> None:
    result = clf.classify(
        "과기정통부, 네이버 등 독자 AI 파운데이션 모델 정예팀 발표",
        "과학기술정보통신부는 네이버클라우드와 업스테이지가 포함된 정예팀에 GPU와 데이터를 "
        "지원한다고 밝혔다.",
        "ko",
    )
    assert result.relevant
    assert result.countries == ("KR",)
    assert {"msit", "naver", "upstage"} <= set(result.entities)
    assert "models" in result.topics


def test_consumer_gadget_is_not_relevant(clf: Classifier) -> None:
    result = clf.classify(
        "Apple launches new iPhone", "The phone has a faster chip and comes in three colours.", "en"
    )
    assert not result.relevant
    assert result.score < 0.5


def test_big_tech_model_launch_is_not_a_national_effort(clf: Classifier) -> None:
    result = clf.classify(
        "OpenAI releases GPT-5 to all ChatGPT users",
        "The company says the new model is faster and better at coding.",
        "en",
    )
    assert not result.relevant


def test_korean_sports_and_central_bank_news_are_not_relevant(clf: Classifier) -> None:
    sports = clf.classify("LG 트윈스, 한국시리즈 우승", "LG가 kt를 꺾고 우승했다.", "ko")
    bank = clf.classify("한국은행, 기준금리 동결", "금통위는 연 2.5%를 유지했다.", "ko")
    assert not sports.relevant
    assert not bank.relevant


def test_sovereign_ai_as_a_late_aside_does_not_make_earnings_relevant(clf: Classifier) -> None:
    result = clf.classify(
        "Chipmaker posts record quarter and announces stock split",
        "Revenue rose 80% on data centre demand. Shares rose after hours. The chief executive "
        "said demand came from cloud firms, enterprises and sovereign AI customers.",
        "en",
    )
    assert not result.relevant


def test_passing_mentions_do_not_tag_countries(clf: Classifier) -> None:
    result = clf.classify(
        "Korean team unveils its national foundation model",
        "Upstage, one of the teams in the government programme, released Solar Pro 2. "
        "The model aims to rival OpenAI and Google. Engineers said the vision part uses "
        "Alibaba's Qwen encoder.",
        "en",
    )
    assert result.relevant
    assert result.countries == ("KR",)
    assert "qwen" in result.entities


def test_korean_comparison_is_a_yardstick(clf: Classifier) -> None:
    result = clf.classify(
        "LG AI연구원 엑사원, 큐웬3 대비 높은 성능",
        "LG AI연구원은 독자 AI 파운데이션 모델 평가에서 최고점을 받았다고 밝혔다.",
        "ko",
    )
    assert result.relevant
    assert result.countries == ("KR",)
    assert "evaluation" in result.topics


def test_foreign_vendor_named_as_party_brings_its_home(clf: Classifier) -> None:
    result = clf.classify(
        "Nvidia and Korea agree on 200,000-GPU sovereign AI build-out",
        "The South Korean government will get part of the supply for a national AI platform.",
        "en",
    )
    assert result.relevant
    assert result.countries == ("KR", "US")
    assert {"compute", "partnerships"} <= set(result.topics)


def test_hardware_mention_does_not_tag_the_vendor_country(clf: Classifier) -> None:
    result = clf.classify(
        "Britain switches on its national AI supercomputer",
        "The government machine uses 5,000 Nvidia chips and cost £200m.",
        "en",
    )
    assert result.relevant
    assert result.countries == ("GB",)
    assert "compute" in result.topics


def test_eu_law_is_tagged_eu_and_policy(clf: Classifier) -> None:
    result = clf.classify(
        "EU AI Act obligations for general-purpose models take effect",
        "The European Commission's AI Office will enforce the rules from next year.",
        "en",
    )
    assert result.relevant
    assert result.countries == ("EU",)
    assert "policy" in result.topics


@pytest.mark.parametrize(
    ("title", "summary", "lang", "country"),
    [
        ("Mistral AI raises €1.7 billion", "The French start-up builds compute.", "en", "FR"),
        ("Abu Dhabi's G42 and TII release a Falcon model", "The UAE says so.", "en", "AE"),
        ("Sakana AI raises $135 million", "The Tokyo-based lab will hire researchers.", "en", "JP"),
        ("IndiaAI Mission picks Sarvam for sovereign LLM", "It gets 4,000 GPUs.", "en", "IN"),
        ("HUMAIN launches Arabic model ALLaM", "The Saudi company is backed by PIF.", "en", "SA"),
        ("経済産業省、国産生成AIの開発を支援", "政府は基盤モデルに計算資源を出す。", "ja", "JP"),
        ("Switzerland releases Apertus, an open national LLM", "ETH Zurich built it.", "en", "CH"),
    ],
)
def test_national_efforts_elsewhere(
    clf: Classifier, title: str, summary: str, lang: str, country: str
) -> None:
    result = clf.classify(title, summary, lang)
    assert result.relevant, title
    assert country in result.countries


def test_output_shape_and_purity(clf: Classifier) -> None:
    args = (
        "Canada invests C$2 billion in sovereign AI compute",
        "The federal government will fund data centres, a supercomputer and GPU access for "
        "start-ups, and train students in AI skills.",
        "en",
    )
    first = clf.classify(*args)
    assert first == clf.classify(*args)
    assert 0.5 <= first.score <= 1.0
    assert list(first.countries) == sorted(first.countries)
    assert set(first.topics) <= set(TOPICS)
    assert list(first.topics) == [t for t in TOPICS if t in first.topics]
    assert {"funding", "compute"} <= set(first.topics)


def test_empty_and_huge_input(clf: Classifier) -> None:
    empty = clf.classify("", "", None)
    assert not empty.relevant and empty.score == 0.0 and empty.countries == ()
    huge = clf.classify("Korea's AI plan", "정부 AI " * 50_000, "ko")
    assert huge.relevant


def test_explain_reports_the_evidence(clf: Classifier) -> None:
    info = clf.explain("과기정통부, AI 예산 확대", "정부는 GPU 확보에 투자한다.", "ko")
    assert info["ai"] and info["national"]
    assert "KR" in info["countries"]  # type: ignore[operator]


def test_speed_thousands_per_second(clf: Classifier) -> None:
    items = [
        (f"Ministry {i} backs sovereign AI model", "The government said it will fund GPUs. " * 8)
        for i in range(1000)
    ] + [(f"네이버 {i}번째 AI 모델", "과기정통부는 정예팀을 발표했다. " * 8) for i in range(1000)]
    started = time.perf_counter()
    for title, summary in items:
        clf.classify(title, summary, None)
    rate = len(items) / (time.perf_counter() - started)
    assert rate > 2000, f"{rate:.0f} items/s"


@pytest.mark.skipif(not (SHARED / "eval" / "articles.jsonl").exists(), reason="no shared data")
def test_dev_set_targets(clf: Classifier) -> None:
    from tests.eval.score_classify import load_articles, score_articles

    result = score_articles(clf, load_articles(SHARED / "eval" / "articles.jsonl"))
    assert result.relevance.f1 >= 0.92
    assert result.relevance.specificity >= 0.85
    assert result.countries.f1 >= 0.90
    assert result.topics.f1 >= 0.75


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "realworld" / "real-feeds-200").is_dir(), reason="no feeds")
def test_real_world_feeds_are_mostly_not_relevant(clf: Classifier) -> None:
    from tests.eval.score_classify import feed_items, score_realworld

    items = feed_items(SHARED / "realworld" / "real-feeds-200")
    assert len(items) > 5000
    share, _flagged = score_realworld(clf, items)
    assert share <= 0.01
