"""Feed HTML to inert plain text.

nh3 (an html5ever-based sanitiser) does the parsing, so no tag, attribute, comment, event
handler or `javascript:` link can survive; only text nodes come out. Paragraph policy: block
boundaries (`<p>`, `<br>`, `<li>`, headings, ...) and blank lines in plain text become a
single newline; every other whitespace run becomes one space. `single_line=True` turns the
newlines into spaces too (titles). Mentions and markdown are left alone: they are neutralised
per platform at render time.
"""

from __future__ import annotations

import html
import re

import nh3

# Tags whose *content* is not reader-visible text (code, styling, fallbacks, form state).
_DROP_CONTENT = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "textarea", "title"}
)

# Marks a block boundary through nh3; U+2029 is text to the sanitiser and rare in feeds.
_BREAK = "\u2029"
# Only the "<" is consumed, so the replacement is a plain literal (no template to expand).
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|table|blockquote|pre|section|article"
    r"|header|footer|aside|figure|figcaption|hr|address)[\s/>])",
    re.IGNORECASE,
)
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_TAG_LIKE = re.compile(r"<[A-Za-z/!?]")
_ENTITY_LIKE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
# More rounds than any honest double-escaping needs; a bound so hostile nesting cannot loop.
_MAX_ROUNDS = 3
# How much HTML is worth sanitising per character of output when a length cap is given.
_INPUT_PER_OUTPUT = 5
_MIN_INPUT = 4_000
_ELLIPSIS = "…"


def _one_round(text: str) -> str:
    """Strip every tag (dropping script-like content), then decode entities once."""
    marked = _BLOCK_TAG.sub(_BREAK + "<", text) if "<" in text else text
    cleaned = nh3.clean(
        marked,
        tags=set(),
        clean_content_tags=set(_DROP_CONTENT),
        attributes={},
        strip_comments=True,
        link_rel=None,
    )
    return html.unescape(cleaned)


def _collapse(text: str, single_line: bool) -> str:
    """One space per whitespace run, one newline per run that holds a block break."""
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    # str.split() with no argument splits on every Unicode space run, and is fast.
    parts = [" ".join(chunk.split()) for chunk in text.split(_BREAK)]
    return (" " if single_line else "\n").join(part for part in parts if part)


def truncate_words(text: str, max_len: int) -> str:
    """Cut to at most `max_len` characters at a word boundary, marking the cut with '…'."""
    if len(text) <= max_len:
        return text
    if max_len <= len(_ELLIPSIS):
        return text[:max_len]
    room = max_len - len(_ELLIPSIS)
    head = text[: room + 1]
    cut = max(head.rfind(" "), head.rfind("\n"))
    # A word longer than 40% of the room (a URL, CJK without spaces) is cut mid-word instead.
    if cut < room * 0.6:
        cut = room
    return text[:cut].rstrip() + _ELLIPSIS


def html_to_text(html_text: str, max_len: int | None = None, *, single_line: bool = False) -> str:
    """Feed HTML (or plain text) to plain text that is safe to store and show anywhere.

    Entities are decoded; text that was escaped twice (`&amp;lt;b&amp;gt;`) is treated as the
    HTML it was meant to be, for a few rounds at most. With `max_len`, only a bounded prefix
    of the input is sanitised and the result is cut at a word boundary.
    """
    if not html_text:
        return ""
    if max_len is not None:
        html_text = html_text[: max(max_len * _INPUT_PER_OUTPUT, _MIN_INPUT)]
    text = html_text.replace("\r\n", "\n")
    if "\n" in text:
        text = _BLANK_LINE.sub(_BREAK, text)
    for _ in range(_MAX_ROUNDS):
        if "<" not in text and "&" not in text:
            break  # no tag and no entity: nothing for the sanitiser to do
        text = _one_round(text)
        if not (_TAG_LIKE.search(text) or _ENTITY_LIKE.search(text)):
            break
    else:
        # Still markup-like after the bound: make any leftover tag opener inert.
        text = _TAG_LIKE.sub(lambda m: "‹" + m.group(0)[1:], text)
    if max_len is not None:
        # Collapsing only shrinks text; a generous prefix is enough to fill max_len.
        text = truncate_words(_collapse(text[: max_len * 4], single_line), max_len)
    else:
        text = _collapse(text, single_line)
    return text
