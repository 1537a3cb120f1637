"""canonical_url and url_host."""

from __future__ import annotations

import pytest

from bot.core.urls import canonical_url, url_host


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "https://news.example.com/a?utm_source=rss&utm_medium=feed&id=42",
            "https://news.example.com/a?id=42",
        ),
        ("https://example.com/a?fbclid=abc&gclid=x&no=7", "https://example.com/a?no=7"),
        (
            "https://example.com/view?news_id=9&mc_cid=1&mc_eid=2&igshid=3&ref=tw&ref_src=x",
            "https://example.com/view?news_id=9",
        ),
        (
            "https://example.com/?p=123&spm=a.b&_ga=1&yclid=2&msclkid=3",
            "https://example.com/?p=123",
        ),
        ("https://example.com/a?cmpid=rss&ocid=x&xtor=RSS-1", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=x&ID=1", "https://example.com/a?ID=1"),
        ("https://example.com/a?", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1&c=3", "https://example.com/a?b=2&a=1&c=3"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/app#!/article/7", "https://example.com/app#!/article/7"),
        ("HTTPS://News.Example.COM/Path/To/Article", "https://news.example.com/Path/To/Article"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com", "https://example.com/"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/%7ebob", "https://example.com/%7Ebob"),
        ("https://example.kr/기사/1", "https://example.kr/%EA%B8%B0%EC%82%AC/1"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://[2001:DB8::1]:8080/a", "https://[2001:db8::1]:8080/a"),
        ("//cdn.example.com/a", "https://cdn.example.com/a"),
        ("https://Bücher.example/a", "https://xn--bcher-kva.example/a"),
        ('https://example.com/a"onmouseover="x', "https://example.com/a%22onmouseover=%22x"),
        ("https://example.com/<b>?q=<i>", "https://example.com/%3Cb%3E?q=%3Ci%3E"),
        ('https://example.com/app#!/a"<b>', "https://example.com/app#!/a%22%3Cb%3E"),
    ],
)
def test_canonical_form(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


def test_query_values_keep_their_exact_encoding() -> None:
    assert canonical_url("https://example.com/s?q=a+b&x=%2F") == "https://example.com/s?q=a+b&x=%2F"


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        ("/news/1", "https://example.com/feed.xml", "https://example.com/news/1"),
        ("item?id=3", "https://example.com/blog/", "https://example.com/blog/item?id=3"),
        ("../a", "https://example.com/x/y/feed", "https://example.com/x/a"),
        ("https://other.org/a", "https://example.com/", "https://other.org/a"),
        ("?id=5&utm_source=x", "https://example.com/list.php", "https://example.com/list.php?id=5"),
    ],
)
def test_relative_links_resolve_against_the_base(link: str, base: str, expected: str) -> None:
    assert canonical_url(link, base) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "mailto:a@example.com",
        "ftp://example.com/a",
        "relative/path",
        "",
        "   ",
        "https://",
        "http://example.com:99999/a",
        'https://x"onmouseover=alert(1)/',
        "https://exa mple.com/",
        "https://<script>/",
    ],
)
def test_anything_but_a_web_link_gives_empty(raw: str) -> None:
    assert canonical_url(raw) == ""


def test_javascript_link_stays_unusable_even_with_a_base() -> None:
    assert canonical_url("javascript:alert(1)", "https://example.com/") == ""


@pytest.mark.parametrize(
    "raw",
    [
        "HTTPS://Example.com:443/A/b?utm_source=x&z=1&a=2#frag",
        "https://example.com/a b/%7e?q=a+b&x=%2f&y",
        "https://example.kr/기사?제목=값",
        "http://example.com/app#!/x",
    ],
)
def test_idempotent(raw: str) -> None:
    once = canonical_url(raw)
    assert once
    assert canonical_url(once) == once


def test_url_host() -> None:
    assert url_host("https://WWW.Example.com:8080/feed") == "example.com"
    assert url_host("https://news.example.co.kr/rss") == "news.example.co.kr"
    assert url_host("not a url") == ""
    assert url_host("http://[::1]:99999/") == "::1"
