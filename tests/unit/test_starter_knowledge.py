"""Checks the shipped starter-knowledge file, since a broken line would fail first start offline."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from bot.core.models import TOPICS

DATA_FILE = Path(__file__).parents[2] / "bot" / "data" / "starter_knowledge.jsonl"

FIELDS = {
    "id": str,
    "title": str,
    "summary": str,
    "url": str,
    "lang": str,
    "countries": list,
    "topics": list,
    "source": str,
}
ALL_FIELDS = {*FIELDS, "published"}
COUNTRY_RE = re.compile(r"^(?:[A-Z]{2}|EU)$")
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _entries() -> list[dict[str, Any]]:
    lines = DATA_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_every_line_parses_as_an_object() -> None:
    lines = [ln for ln in DATA_FILE.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert lines, "starter file is empty"
    for number, line in enumerate(lines, start=1):
        value = json.loads(line)
        assert isinstance(value, dict), f"line {number} is not an object"


def test_entry_count_in_expected_range() -> None:
    assert 60 <= len(_entries()) <= 90


def test_fields_and_types() -> None:
    for entry in _entries():
        assert set(entry) == ALL_FIELDS, entry.get("id")
        for name, kind in FIELDS.items():
            assert isinstance(entry[name], kind), (entry["id"], name)
        for name in ("id", "title", "summary", "source"):
            assert entry[name].strip(), (entry["id"], name)
        assert ID_RE.match(entry["id"]), entry["id"]
        assert entry["lang"] in {"en", "ko"}, entry["id"]
        assert entry["countries"], entry["id"]
        assert entry["topics"], entry["id"]


def test_published_is_iso_date_or_null() -> None:
    for entry in _entries():
        published = entry["published"]
        if published is None:
            continue
        assert isinstance(published, str), entry["id"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", published), entry["id"]
        assert date.fromisoformat(published) <= date.today(), entry["id"]


def test_ids_and_urls_unique() -> None:
    entries = _entries()
    ids = [e["id"] for e in entries]
    urls = [e["url"] for e in entries]
    assert len(ids) == len(set(ids))
    assert len(urls) == len(set(urls))


def test_urls_are_https() -> None:
    for entry in _entries():
        assert re.match(r"^https://[^\s/]+\.[^\s/]+", entry["url"]), entry["id"]
        assert not re.search(r"\s", entry["url"]), entry["id"]


def test_country_codes_valid() -> None:
    for entry in _entries():
        countries = entry["countries"]
        assert len(countries) == len(set(countries)), entry["id"]
        for code in countries:
            assert isinstance(code, str) and COUNTRY_RE.match(code), (entry["id"], code)


def test_topics_from_shared_list() -> None:
    allowed = set(TOPICS)
    for entry in _entries():
        topics = entry["topics"]
        assert len(topics) == len(set(topics)), entry["id"]
        assert set(topics) <= allowed, (entry["id"], set(topics) - allowed)


def test_coverage_breadth() -> None:
    countries = {code for e in _entries() for code in e["countries"]}
    assert len(countries) >= 24, sorted(countries)


def test_korea_depth_and_korean_language_entries() -> None:
    entries = _entries()
    assert sum(1 for e in entries if "KR" in e["countries"]) >= 5
    korean = [e for e in entries if e["lang"] == "ko"]
    assert len(korean) >= 3
    hangul = re.compile(r"[\uac00-\ud7a3]")
    for entry in korean:
        assert hangul.search(entry["summary"]), entry["id"]


def test_summary_and_title_lengths() -> None:
    for entry in _entries():
        assert len(entry["summary"]) <= 900, entry["id"]
        assert len(entry["summary"]) >= 80, entry["id"]
        assert len(entry["title"]) <= 160, entry["id"]


def test_summaries_are_plain_text() -> None:
    markup = re.compile(r"<[a-zA-Z/][^>]*>|\*\*|\]\(|^#", re.MULTILINE)
    for entry in _entries():
        assert not markup.search(entry["summary"]), entry["id"]
        assert "\n" not in entry["summary"], entry["id"]
