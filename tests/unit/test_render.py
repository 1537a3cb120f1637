"""Rendering: hostile text inert on every platform, limits kept, long text split sensibly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from bot.core.deliver.render import (
    DISCORD_DESCRIPTION_MAX,
    DISCORD_TITLE_MAX,
    TELEGRAM_MAX,
    ZWSP,
    discord_alert,
    discord_escape,
    discord_reply,
    mute_buttons,
    plain_alert,
    plain_reply,
    split_plain,
    telegram_alert,
    telegram_reply,
    utf16_len,
)
from bot.core.models import AlertMessage, Reply, Source

HOSTILE = [
    "@everyone big news",
    "@here <b>bold</b> claim",
    "**markdown** __under__ ~~strike~~ `code` ||spoiler||",
    "<script>alert(1)</script> & co",
    "[click](https://evil.example) <@123456> <@&42> # header",
    "> quote\n- list item\n1. numbered",
    'Tom & Jerry\'s "quoted" <i>title</i>',
]


class _Tags(HTMLParser):
    """What Telegram would see: the tags used and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(html_text: str) -> tuple[set[str], str]:
    parser = _Tags()
    parser.feed(html_text)
    return set(parser.tags), "".join(parser.text)


def alert(title: str, **kw: object) -> AlertMessage:
    base: dict[str, object] = {
        "story_id": "s1",
        "title": title,
        "url": "https://news.example/a?x=1&y=2",
        "summary": "Seoul picks five teams for its foundation model programme.",
        "outlet": "Example <News>",
        "published": datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
        "countries": ("KR", "JP"),
        "topics": ("models", "compute"),
        "also_reported_by": ("Outlet B", "@everyone Daily"),
        "buttons": mute_buttons(("KR", "JP"), ("models", "compute")),
    }
    base.update(kw)
    return AlertMessage(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("title", HOSTILE)
def test_telegram_alert_shows_hostile_titles_as_typed(title: str) -> None:
    out = telegram_alert(alert(title))
    tags, text = visible(out.html)
    assert tags <= {"b", "i", "a"}
    shown = text.replace(ZWSP, "")
    assert title.split("\n")[0] in shown.replace("\n", "\n")
    assert "<script>" not in out.html and "<b>bold" not in out.html


def test_telegram_alert_parts() -> None:
    out = telegram_alert(alert("Korea names its AI teams"))
    _tags, text = visible(out.html)
    assert out.html.startswith("🇰🇷🇯🇵 <b>Korea names its AI teams</b>")
    assert '<a href="https://news.example/a?x=1&amp;y=2">Example &lt;News&gt;</a>' in out.html
    assert "2026-01-05" in text and "#models" in text and "#compute" in text
    assert "Also reported by: Outlet B, @" + ZWSP + "everyone Daily" in text
    labels = [b.action for row in out.buttons for b in row]
    assert labels == [
        "mute:country:KR",
        "mute:country:JP",
        "mute:topic:models",
        "mute:topic:compute",
    ]
    assert all(len(a.encode()) <= 64 for a in labels)


def test_telegram_alert_drops_links_that_are_not_http() -> None:
    out = telegram_alert(alert("x", url="javascript:alert(1)"))
    assert "<a " not in out.html and "javascript" not in out.html


def test_telegram_reply_splits_on_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Paragraph {i}: " + ("word " * 150).strip() for i in range(40)]
    pieces = telegram_reply(Reply(text="\n\n".join(paragraphs), title="Digest"))
    assert len(pieces) > 1
    seen: list[str] = []
    for piece in pieces:
        _tags, text = visible(piece.html)
        assert utf16_len(text) <= TELEGRAM_MAX
        seen.extend(p.split(":")[0] for p in text.split("\n\n") if p.startswith("Paragraph"))
    assert seen == [f"Paragraph {i}" for i in range(40)]  # whole paragraphs, in order


def test_telegram_reply_hard_splits_one_huge_paragraph_and_counts_utf16() -> None:
    text = "한국 🇰🇷 " * 2000  # astral flags count double in UTF-16
    pieces = telegram_reply(Reply(text=text))
    assert len(pieces) >= 2
    for piece in pieces:
        assert utf16_len(visible(piece.html)[1]) <= TELEGRAM_MAX


def test_telegram_reply_sources_are_links() -> None:
    reply = Reply(
        text="Answer [1].",
        sources=(Source("T <1>", "https://a.example/x", "2026-01-01", "Outlet"),),
    )
    piece = telegram_reply(reply)[0].html
    assert '[1] <a href="https://a.example/x">T &lt;1&gt;</a>' in piece


@pytest.mark.parametrize("title", HOSTILE)
def test_discord_alert_is_inert(title: str) -> None:
    body = discord_alert(alert(title))
    assert body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    rendered = embed["title"] + embed.get("description", "") + str(embed["fields"])
    assert "@everyone" not in rendered and "@here" not in rendered
    assert not re.search(r"(?<!\\)\*\*", embed["title"])  # every * escaped
    assert not re.search(r"(?<!\\)\]\(", embed["title"])  # no masked link
    assert not re.search(r"(?<!\\)<@", embed["title"])  # no raw mention
    assert utf16_len(embed["title"]) <= DISCORD_TITLE_MAX


def test_discord_escape_keeps_links_clickable_and_breaks_markup() -> None:
    out = discord_escape("**big** news @everyone at https://x.example/a_b_(c). # not a header")
    assert out.startswith("\\*\\*big\\*\\* news @" + ZWSP + "everyone")
    assert "<https://x.example/a_b_(c)>." in out
    assert discord_escape("# Title\n> quote\n- item") == "\\# Title\n\\> quote\n\\- item"


def test_discord_alert_shape_and_limits() -> None:
    long = alert("T" * 1000, summary="S " * 5000)
    body = discord_alert(long)
    embed = body["embeds"][0]
    assert utf16_len(embed["title"]) <= DISCORD_TITLE_MAX
    assert utf16_len(embed["description"]) <= DISCORD_DESCRIPTION_MAX
    assert embed["url"].startswith("https://")
    assert {f["name"] for f in embed["fields"]} == {
        "Countries",
        "Topics",
        "Source",
        "Also reported by",
    }
    assert all(0 < len(f["value"]) <= 1024 for f in embed["fields"])
    ids = [c["custom_id"] for row in body["components"] for c in row["components"]]
    assert ids[:2] == ["mute:country:KR", "mute:country:JP"]
    assert sum(len(str(v)) for v in (embed["title"], embed["description"])) < 6000


def test_discord_reply_splits_to_the_description_limit() -> None:
    text = "\n".join(f"• line {i} " + "x" * 80 for i in range(200))
    bodies = discord_reply(Reply(text=text, title="Digest"))
    assert len(bodies) > 1
    assert bodies[0]["embeds"][0]["title"] == "Digest"
    for body in bodies:
        assert utf16_len(body["embeds"][0]["description"]) <= DISCORD_DESCRIPTION_MAX
        assert body["allowed_mentions"] == {"parse": []}


def test_discord_reply_sources_are_masked_links() -> None:
    reply = Reply(text="A", sources=(Source("T ] (x)", "https://a.example/p(1)"),))
    description = discord_reply(reply)[0]["embeds"][0]["description"]
    assert "\\[1\\] [T \\] (x)](https://a.example/p%281%29)" in description


def test_plain_text_strips_control_characters() -> None:
    text = plain_alert(alert("Evil \x1b[2J title\u202e"))
    assert "\x1b" not in text and "\u202e" not in text
    assert "🔔 Evil [2J title" in text
    assert "\x07" not in plain_reply(Reply(text="beep\x07", title="T"))


def test_split_plain_prefers_lines_then_words() -> None:
    assert split_plain("short", 10) == ["short"]
    chunks = split_plain("aaaa bbbb\ncccc dddd eeee", 10)
    assert chunks == ["aaaa bbbb", "cccc dddd", "eeee"]
    assert all(len(c) <= 10 for c in split_plain("x" * 35, 10))
