"""Alerts and replies as each platform wants them: Telegram HTML, Discord embeds, plain text.

Everything from feeds and users is untrusted. Telegram gets it HTML-escaped; Discord gets it
markdown-escaped, with `@everyone`/`@here` broken by a zero-width space and no mention allowed;
the console gets it without control characters. A title such as `@everyone <b>**hi**</b>` shows
as typed everywhere and pings nobody.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.gazetteer import flag
from bot.core.models import AlertMessage, Button, Reply

TELEGRAM_MAX = 4096
DISCORD_TITLE_MAX = 256
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELD_MAX = 1024
DISCORD_LABEL_MAX = 80
TITLE_MAX = 300
SUMMARY_MAX = 600
ALSO_MAX = 12
# Plain-text size of one part of a digest or catch-up, before a platform's markup.
TEXT_BUDGET = {"telegram": 3500, "discord": 1800, "console": 50_000}
ZWSP = "\u200b"
ALLOWED_MENTIONS_NONE: dict[str, Any] = {"parse": []}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MENTION_WORD = re.compile(r"@(everyone|here)", re.IGNORECASE)
_AT_HANDLE = re.compile(r"(?<![\w@])@(?=\w)")
_URL = re.compile(r"https?://[^\s<>\"]+")
_MD_SPECIAL = re.compile(r"([\\*_~`|\[\]<])")
_MD_LINE_START = re.compile(r"(?m)^(\s*)([#>+-]|\d+\.)")


def utf16_len(text: str) -> int:
    """Telegram and Discord count lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def clean(text: str) -> str:
    """Drop control and bidi-override characters; keep newlines and tabs."""
    return _CONTROL.sub("", text or "")


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis."""
    text = " ".join(clean(text).split()) if "\n" not in text else clean(text).strip()
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 1)]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def safe_url(url: str) -> str | None:
    """Only http(s) links without spaces or control characters are made clickable."""
    url = (url or "").strip()
    if not re.match(r"^https?://[^\s\x00-\x1f\x7f]+$", url, re.IGNORECASE):
        return None
    return url


def date_of(when: datetime | None) -> str:
    return when.date().isoformat() if when else ""


def country_line(countries: Sequence[str]) -> str:
    return ", ".join(f"{flag(c)} {c}".strip() for c in countries)


def mute_buttons(countries: Sequence[str], topics: Sequence[str]) -> tuple[Button, ...]:
    """Tap to stop alerts for a country or topic this alert is about."""
    out = [
        Button(f"🔕 {flag(c)} {c}".replace("  ", " "), f"mute:country:{c}") for c in countries[:3]
    ]
    out += [Button(f"🔕 {t}", f"mute:topic:{t}") for t in topics[:2]]
    return tuple(out)


def also_line(outlets: Sequence[str]) -> str:
    names = [shorten(o, 60) for o in outlets if o][:ALSO_MAX]
    more = len(outlets) - len(names)
    text = ", ".join(names)
    return f"{text} and {more} more" if more > 0 else text


def split_plain(text: str, limit: int) -> list[str]:
    """Cut text into chunks of at most `limit` UTF-16 units, at line, then word boundaries."""
    if utf16_len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if utf16_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
            current = ""
        while utf16_len(line) > limit:
            cut = limit
            while utf16_len(line[:cut]) > limit:
                cut -= 1
            space = line.rfind(" ", 0, cut)
            cut = space if space > cut // 2 else cut
            chunks.append(line[:cut])
            line = line[cut:].lstrip(" ")
        current = line
    if current:
        chunks.append(current)
    return chunks


# --- Telegram ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramText:
    """One Telegram message: HTML for parse_mode=HTML and inline keyboard rows."""

    html: str
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True)
class _Para:
    html: str
    size: int  # visible UTF-16 units once Telegram has parsed the tags
    sep: str = "\n\n"


def tg_escape(text: str) -> str:
    """HTML-escape, and keep `@name` from notifying anyone in a group."""
    return html.escape(_AT_HANDLE.sub("@" + ZWSP, clean(text)), quote=True)


def _plain_paras(text: str, limit: int = TELEGRAM_MAX) -> list[_Para]:
    out: list[_Para] = []
    for block in (p for p in clean(text).split("\n\n") if p.strip()):
        for chunk in split_plain(block, limit):
            safe = _AT_HANDLE.sub("@" + ZWSP, chunk)
            out.append(_Para(html.escape(safe, quote=True), utf16_len(safe)))
    return out


def _pack(paras: Sequence[_Para], limit: int = TELEGRAM_MAX) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for para in paras:
        extra = para.size + (utf16_len(para.sep) if current else 0)
        if current and size + extra > limit:
            pieces.append("".join(current))
            current, size = [], 0
            extra = para.size
        current.append((para.sep if current else "") + para.html)
        size += extra
    if current:
        pieces.append("".join(current))
    return pieces


def _rows(buttons: Sequence[Button], per_row: int = 3) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def _tg_link(url: str, text: str) -> tuple[str, int]:
    shown = clean(text) or url
    link = safe_url(url)
    if link is None:
        return tg_escape(shown), utf16_len(shown)
    return f'<a href="{html.escape(link, quote=True)}">{tg_escape(shown)}</a>', utf16_len(shown)


def telegram_alert(alert: AlertMessage) -> TelegramText:
    """Flag and bold title, summary, linked outlet and date, tags, other outlets."""
    title = shorten(alert.title, TITLE_MAX) or "(untitled)"
    flags = "".join(flag(c) for c in alert.countries[:4])
    head = f"{flags} " if flags else ""
    paras = [_Para(f"{head}<b>{tg_escape(title)}</b>", utf16_len(head + title))]
    summary = shorten(alert.summary, SUMMARY_MAX)
    if summary:
        paras.extend(_plain_paras(summary))
    link, size = _tg_link(alert.url, alert.outlet or alert.url)
    meta = link
    if alert.published:
        meta += f" · {date_of(alert.published)}"
        size += utf16_len(f" · {date_of(alert.published)}")
    tags = [*alert.countries, *(f"#{t}" for t in alert.topics)]
    if tags:
        line = " ".join(tags)
        meta += "\n" + tg_escape(line)
        size += 1 + utf16_len(line)
    paras.append(_Para(meta, size))
    if alert.also_reported_by:
        line = "Also reported by: " + also_line(alert.also_reported_by)
        paras.append(_Para(f"<i>{tg_escape(line)}</i>", utf16_len(line)))
    # Every part is capped above, so an alert always fits one message.
    return TelegramText(_pack(paras)[0], _rows(alert.buttons))


def telegram_reply(reply: Reply) -> list[TelegramText]:
    """A reply as one or more messages split on paragraph boundaries; buttons on the last."""
    paras: list[_Para] = []
    if reply.title:
        title = shorten(reply.title, TITLE_MAX)
        paras.append(_Para(f"<b>{tg_escape(title)}</b>", utf16_len(title)))
    paras.extend(_plain_paras(reply.text))
    if reply.note:
        note = clean(reply.note)
        paras.append(_Para(f"<i>{tg_escape(note)}</i>", utf16_len(note)))
    if reply.sources and reply.grounded is not False:
        paras.append(_Para("<b>Sources</b>", len("Sources")))
        for n, src in enumerate(reply.sources, 1):
            link, size = _tg_link(src.url, shorten(src.title, TITLE_MAX))
            meta = ", ".join(clean(x) for x in (src.outlet, src.published) if x)
            extra = f" ({meta})" if meta else ""
            size += len(f"[{n}] ") + utf16_len(extra)
            paras.append(_Para(f"[{n}] {link}{tg_escape(extra)}", size, "\n"))
    pieces = _pack(paras) or ["…"]
    rows = _rows(reply.buttons)
    return [TelegramText(p, rows if i == len(pieces) - 1 else ()) for i, p in enumerate(pieces)]


# --- Discord -------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MENTION_WORD.sub(lambda m: "@" + ZWSP + m.group(1), text)


def _trim_url(url: str) -> str:
    """A bare link without the sentence punctuation after it; balanced brackets stay."""
    while url:
        last = url[-1]
        if last in ".,;:!?'\"" or (last == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url


def discord_escape(text: str) -> str:
    """Markdown inert, mentions broken, bare links kept clickable (as `<url>`, no preview)."""
    text = clean(text)
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        out.append(_md_escape(text[last : match.start()]))
        out.append(f"<{url}>")
        last = match.start() + len(url)
    out.append(_md_escape(text[last:]))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), "".join(out))


def fit(text: str, limit: int) -> str:
    """Escaped text of at most `limit` UTF-16 units, shortening the plain text as needed."""
    escaped = discord_escape(text)
    plain_limit = limit
    while utf16_len(escaped) > limit and plain_limit > 1:
        plain_limit = max(1, int(plain_limit * 0.8))
        escaped = discord_escape(shorten(text, plain_limit))
    return escaped


def _masked(url: str, text: str) -> str:
    link = safe_url(url)
    shown = fit(text, 200) or "link"
    if link is None:
        return shown
    link = link.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{shown}]({link})"


def discord_components(buttons: Sequence[Button]) -> list[dict[str, Any]]:
    """Buttons as message components: rows of up to five secondary buttons."""
    rows: list[dict[str, Any]] = []
    for i in range(0, min(len(buttons), 25), 5):
        rows.append(
            {
                "type": 1,
                "components": [
                    {
                        "type": 2,
                        "style": 2,
                        "label": clean(b.label)[:DISCORD_LABEL_MAX] or "…",
                        "custom_id": b.action[:100],
                    }
                    for b in buttons[i : i + 5]
                ],
            }
        )
    return rows


def discord_alert(alert: AlertMessage) -> dict[str, Any]:
    """A message body: one embed, mute buttons, and no mention allowed."""
    embed: dict[str, Any] = {
        "title": fit(shorten(alert.title, TITLE_MAX) or "(untitled)", DISCORD_TITLE_MAX),
        "color": 0x2B6CB0,
        "footer": {"text": "Sovereign Watch"},
    }
    link = safe_url(alert.url)
    if link:
        embed["url"] = link
    summary = shorten(alert.summary, SUMMARY_MAX)
    if summary:
        embed["description"] = fit(summary, DISCORD_DESCRIPTION_MAX)
    fields: list[dict[str, Any]] = []
    if alert.countries:
        fields.append({"name": "Countries", "value": country_line(alert.countries), "inline": True})
    if alert.topics:
        fields.append({"name": "Topics", "value": ", ".join(alert.topics), "inline": True})
    source = " · ".join(x for x in (clean(alert.outlet), date_of(alert.published)) if x)
    if source:
        fields.append({"name": "Source", "value": fit(source, DISCORD_FIELD_MAX), "inline": True})
    if alert.also_reported_by:
        fields.append(
            {
                "name": "Also reported by",
                "value": fit(also_line(alert.also_reported_by), DISCORD_FIELD_MAX),
                "inline": False,
            }
        )
    if fields:
        embed["fields"] = fields
    if alert.published:
        embed["timestamp"] = alert.published.isoformat()
    body: dict[str, Any] = {"embeds": [embed], "allowed_mentions": dict(ALLOWED_MENTIONS_NONE)}
    if alert.buttons:
        body["components"] = discord_components(alert.buttons)
    return body


def _pack_lines(lines: Iterable[str], limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if current and utf16_len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def discord_reply(reply: Reply) -> list[dict[str, Any]]:
    """A reply as message bodies of one embed each, split on lines to the description limit."""
    lines = [discord_escape(chunk) for chunk in split_plain(clean(reply.text), 1500)]
    if reply.note:
        lines.append("*" + fit(reply.note, 1000) + "*")
    if reply.sources and reply.grounded is not False:
        lines.append("")
        lines.append("**Sources**")
        for n, src in enumerate(reply.sources, 1):
            meta = " · ".join(clean(x) for x in (src.outlet, src.published) if x)
            extra = f" — {fit(meta, 200)}" if meta else ""
            lines.append(f"\\[{n}\\] {_masked(src.url, shorten(src.title, 200))}{extra}")
    chunks = _pack_lines(lines, DISCORD_DESCRIPTION_MAX) or ["…"]
    bodies: list[dict[str, Any]] = []
    for i, chunk in enumerate(chunks):
        embed: dict[str, Any] = {"description": chunk or "…", "color": 0x2B6CB0}
        if i == 0 and reply.title:
            embed["title"] = fit(shorten(reply.title, TITLE_MAX), DISCORD_TITLE_MAX)
        body: dict[str, Any] = {
            "embeds": [embed],
            "allowed_mentions": dict(ALLOWED_MENTIONS_NONE),
        }
        if i == len(chunks) - 1 and reply.buttons:
            body["components"] = discord_components(reply.buttons)
        bodies.append(body)
    return bodies


# --- plain text (console) ------------------------------------------------------------------


def plain_alert(alert: AlertMessage) -> str:
    flags = " ".join(f"{flag(c)} {c}".strip() for c in alert.countries)
    lines = [f"🔔 {shorten(alert.title, TITLE_MAX)}" + (f"  [{flags}]" if flags else "")]
    summary = shorten(alert.summary, SUMMARY_MAX)
    if summary:
        lines.append(f"   {summary}")
    meta = " · ".join(x for x in (clean(alert.outlet), date_of(alert.published)) if x)
    if meta:
        lines.append(f"   {meta}")
    if alert.topics:
        lines.append("   topics: " + ", ".join(alert.topics))
    if alert.also_reported_by:
        lines.append("   also reported by: " + also_line(alert.also_reported_by))
    lines.append(f"   {clean(alert.url)}")
    return "\n".join(lines)


def plain_reply(reply: Reply) -> str:
    lines: list[str] = []
    if reply.title:
        lines.append(f"== {clean(reply.title)} ==")
    lines.append(clean(reply.text))
    if reply.note:
        lines.append(clean(reply.note))
    if reply.sources and reply.grounded is not False:
        lines.append("")
        lines.append("Sources:")
        for n, src in enumerate(reply.sources, 1):
            meta = ", ".join(clean(x) for x in (src.outlet, src.published) if x)
            lines.append(f"[{n}] {clean(src.title)}" + (f" ({meta})" if meta else ""))
            lines.append(f"    {clean(src.url)}")
    return "\n".join(lines)
