"""html_to_text: feed HTML in, inert plain text out."""

from __future__ import annotations

import re

import pytest

from bot.core.sanitize import html_to_text, truncate_words

HOSTILE = [
    "<script>alert(1)</script>Breaking",
    "<img src=x onerror=alert(1)>Breaking",
    '<a href="javascript:alert(1)">Breaking</a>',
    "<svg onload=alert(1)>Breaking</svg>",
    '<body onload="alert(1)">Breaking</body>',
    "<iframe src=javascript:alert(1)></iframe>Breaking",
    "<style>body{background:url(javascript:alert(1))}</style>Breaking",
    "&lt;script&gt;alert(1)&lt;/script&gt;Breaking",
    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;Breaking",
    "&amp;amp;lt;script&amp;amp;gt;alert(1)&amp;amp;lt;/script&amp;amp;gt;Breaking",
    "<scr<script>ipt>alert(1)</script>Breaking",
    "Break<!-- <script>alert(1)</script> -->ing",
    '<a href="jav&#x09;ascript:alert(1)">Breaking</a>',
    '<div style="x:expression(alert(1))" onclick="alert(1)">Breaking</div>',
]
DANGER = re.compile(r"<\s*script|\bon[a-z]+\s*=|javascript:|<[a-z!/]", re.IGNORECASE)


@pytest.mark.parametrize("markup", HOSTILE)
def test_hostile_markup_leaves_no_tag_handler_or_script_link(markup: str) -> None:
    text = html_to_text(markup)
    assert not DANGER.search(text), text
    assert text.endswith("Breaking"), text


def test_script_and_style_contents_are_dropped_entirely() -> None:
    text = html_to_text("<p>a<script>var x = 1;</script>b<style>.c{color:red}</style>c</p>")
    assert text == "abc"


def test_markdown_and_mentions_are_left_for_the_renderer() -> None:
    assert html_to_text("@everyone <b>Breaking</b> **bold**") == "@everyone Breaking **bold**"


def test_entities_are_decoded_once_and_double_escaping_is_undone() -> None:
    assert html_to_text("AT&amp;T &amp; R&amp;D") == "AT&T & R&D"
    assert html_to_text("Korea&#39;s &quot;AI&quot; plan&nbsp;&mdash; now") == (
        'Korea\'s "AI" plan — now'
    )
    assert html_to_text("Korea&amp;#39;s plan") == "Korea's plan"
    assert html_to_text("A &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; move") == "A bold move"


def test_text_that_only_looks_like_markup_survives() -> None:
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("AT&T") == "AT&T"
    assert html_to_text("3 &lt; 4") == "3 < 4"


def test_paragraphs_become_single_newlines_and_other_whitespace_one_space() -> None:
    html = "<p>First   para\n with\twrap.</p>\n\n<p>Second</p><ul><li>one</li><li>two</li></ul>"
    assert html_to_text(html) == "First para with wrap.\nSecond\none\ntwo"
    assert html_to_text("line one<br>line two<br/>line three") == "line one\nline two\nline three"
    assert html_to_text("plain text\n\nsecond paragraph\nsame one") == (
        "plain text\nsecond paragraph same one"
    )


def test_single_line_turns_breaks_into_spaces() -> None:
    assert html_to_text("<p>a</p><p>b</p>", single_line=True) == "a b"


def test_inline_tags_do_not_split_words() -> None:
    assert html_to_text("Sov<b>er</b>eign <i>AI</i>") == "Sovereign AI"


def test_control_characters_are_removed() -> None:
    assert html_to_text("a\x00b\x07c&#1;d") == "abcd"


def test_empty_and_whitespace_only_give_empty_text() -> None:
    assert html_to_text("") == ""
    assert html_to_text("  <p> </p> \n ") == ""


def test_max_len_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    text = html_to_text("<p>" + "sovereign model " * 400 + "</p>", max_len=100)
    assert len(text) <= 100
    assert text.endswith("…")
    assert text[:-1].split()[-1] in {"sovereign", "model"}


def test_max_len_keeps_short_text_whole() -> None:
    assert html_to_text("short text", max_len=100) == "short text"


def test_truncate_words_cuts_mid_word_only_when_there_is_no_space_nearby() -> None:
    assert truncate_words("a" * 50, 10) == "a" * 9 + "…"
    assert truncate_words("alpha beta gamma", 12) == "alpha beta…"
    assert truncate_words("한국어문장입니다" * 5, 10) == "한국어문장입니다한" + "…"


def test_huge_input_with_a_cap_stays_fast_and_bounded() -> None:
    text = html_to_text("<div>" + "<b>word</b> " * 200_000 + "</div>", max_len=2000)
    assert 1000 < len(text) <= 2000
