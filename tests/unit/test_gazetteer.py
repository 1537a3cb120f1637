"""Behaviour of the gazetteer: matching rules, query expansion and country names."""

from __future__ import annotations

import json

import pytest

from bot.core.gazetteer import DATA_PATH, Gazetteer, flag, trie_regex

KINDS = {"country", "agency", "program", "company", "lab", "model", "compute", "law", "person"}


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


def keys(gaz: Gazetteer, text: str) -> list[str]:
    return [m.key for m in gaz.find(text)]


def test_load_is_cached(gaz: Gazetteer) -> None:
    assert Gazetteer.load() is gaz


def test_korean_particles_do_not_hide_names(gaz: Gazetteer) -> None:
    text = "네이버가 하이퍼클로바X를 공개했고 과기정통부는 LG AI연구원의 엑사원을 평가했다"
    found = gaz.find(text)
    assert [m.key for m in found] == ["naver", "hyperclova-x", "msit", "lg-ai-research", "exaone"]
    assert all(m.country == "KR" for m in found)
    assert text[found[0].start : found[0].end] == "네이버"
    msit = found[2]
    assert (msit.kind, text[msit.start : msit.end]) == ("agency", "과기정통부")


def test_latin_names_after_hangul_and_before_particles(gaz: Gazetteer) -> None:
    assert keys(gaz, "SK텔레콤과 KT는 Naver와 경쟁한다") == ["skt", "kt", "naver"]


def test_latin_names_need_word_boundaries(gaz: Gazetteer) -> None:
    assert keys(gaz, "LGBT groups and Naverland fans") == []
    assert keys(gaz, "Koreans and Korea's LG") == ["KR", "KR", "lg"]


def test_case_sensitive_aliases(gaz: Gazetteer) -> None:
    assert keys(gaz, "Upstage raised money") == ["upstage"]
    assert keys(gaz, "they upstage their rivals") == []
    assert keys(gaz, "the US and the EU") == ["US", "EU"]
    assert keys(gaz, "let us know, eu sei") == []


def test_longest_name_wins(gaz: Gazetteer) -> None:
    assert keys(gaz, "North Korea tested a missile") == ["KP"]
    assert keys(gaz, "Stargate UAE goes live") == ["stargate-uae"]
    assert keys(gaz, "인도네시아와 인도") == ["ID", "IN"]


def test_blockers_swallow_lookalikes(gaz: Gazetteer) -> None:
    assert keys(gaz, "LG 트윈스가 kt wiz를 꺾었다") == []
    assert keys(gaz, "호주머니 속 송금") == []
    assert keys(gaz, "LG Twins won") == []


def test_ambiguous_names_need_context(gaz: Gazetteer) -> None:
    assert keys(gaz, "solar panels and the Falcon 9 rocket") == []
    assert "solar-llm" in keys(gaz, "Upstage released Solar, its LLM")
    assert "falcon-llm" in keys(gaz, "TII trained Falcon on new data")
    assert "falcon-llm" not in keys(gaz, "a falcon flew over the stadium")


def test_expand_query_crosses_languages(gaz: Gazetteer) -> None:
    assert "LG" in gaz.expand_query("엘지")
    korea = gaz.expand_query("한국")
    assert "South Korea" in korea and "Korea" in korea and "한국" not in korea
    msit = gaz.expand_query("과기정통부 발표")
    assert "Ministry of Science and ICT" in msit and "MSIT" in msit
    assert "과학기술정보통신부" in gaz.expand_query("What did the Ministry of Science and ICT say?")
    assert gaz.expand_query("nothing to see here") == []


def test_country_code_from_user_input(gaz: Gazetteer) -> None:
    for typed in ("kr", "KR", "Korea", "한국", "대한민국", "South Korea", "korean", "🇰🇷"):
        assert gaz.country_code(typed) == "KR", typed
    for typed in ("eu", "Europe", "European Union", "유럽연합", "🇪🇺"):
        assert gaz.country_code(typed) == "EU", typed
    assert gaz.country_code("uk") == "GB"
    assert gaz.country_code("Britain") == "GB"
    assert gaz.country_code("日本") == "JP"
    assert gaz.country_code("UAE") == "AE"
    for typed in ("", "xx", "Atlantis", "Naver"):
        assert gaz.country_code(typed) is None, typed


def test_country_names_and_codes(gaz: Gazetteer) -> None:
    assert gaz.country_name("KR") == "South Korea"
    assert gaz.country_name("kr", "ko") == "한국"
    assert gaz.country_name("EU") == "European Union"
    assert gaz.country_name("ZZ") == "ZZ"
    codes = gaz.country_codes()
    assert codes == sorted(codes)
    assert {"KR", "US", "CN", "JP", "FR", "DE", "GB", "AE", "SA", "IN", "EU"} <= set(codes)


def test_flags() -> None:
    assert flag("KR") == "🇰🇷"
    assert flag("eu") == "🇪🇺"
    assert flag("uk") == "🇬🇧"
    assert flag("x") == ""
    assert Gazetteer.flag("JP") == "🇯🇵"


def test_suggest_country_for_typos(gaz: Gazetteer) -> None:
    assert gaz.suggest_country("Koera") == "Korea"
    assert gaz.suggest_country("Grmany") == "Germany"
    assert gaz.suggest_country("qqqqqq") is None
    assert gaz.suggest_country("") is None


def test_data_file_is_well_formed() -> None:
    data = json.loads(DATA_PATH.read_text(encoding="utf-8"))
    codes = {c["code"] for c in data["countries"]}
    with_both = [c for c in data["countries"] if c["names"].get("en") and c["names"].get("ko")]
    assert len(with_both) >= 30
    seen: set[str] = set()
    for entity in data["entities"]:
        assert entity["key"] not in seen
        seen.add(entity["key"])
        assert entity["kind"] in KINDS
        assert entity["country"] is None or entity["country"] in codes
        assert entity["names"], entity["key"]
        for name in entity.get("weak", []) + entity.get("case", []):
            assert any(name in names for names in entity["names"].values()), (entity["key"], name)


def test_custom_data_and_weak_context() -> None:
    gaz = Gazetteer(
        {
            "countries": [{"code": "KR", "names": {"en": ["Korea"], "ko": ["한국"]}}],
            "entities": [
                {"key": "acme", "kind": "company", "country": "KR", "names": {"en": ["Acme"]}},
                {
                    "key": "bolt",
                    "kind": "model",
                    "country": "KR",
                    "names": {"en": ["Bolt", "Bolt LLM"]},
                    "weak": ["Bolt"],
                    "needs": ["acme"],
                },
            ],
            "blockers": ["Acme Stadium"],
        }
    )
    assert [m.key for m in gaz.find("a Bolt of lightning")] == []
    assert [m.key for m in gaz.find("Acme ships Bolt")] == ["acme", "bolt"]
    assert [m.key for m in gaz.find("Bolt LLM is out")] == ["bolt"]
    assert [m.key for m in gaz.find("at Acme Stadium")] == []


def test_trie_regex_prefers_longer_words_and_stems() -> None:
    import re

    rx = re.compile(trie_regex(["ai", "ai act", "regulat*"], r"(?!\w)"))
    assert [m.group() for m in rx.finditer("the ai act and ai regulations")] == [
        "ai act",
        "ai",
        "regulat",
    ]
