"""Feed body (RSS 0.9x/1.0/2.0, Atom, JSON Feed) to clean, normalised FeedEntry values.

fastfeedparser is the fast path. feedparser (about 100 times slower) only sees what the fast
parser rejects or visibly misreads: CDF, RSS 0.90, RSS without a channel, XHTML titles, and
bodies where the fast parser found no entries although the markup has items. JSON Feed is
read here with `json`, so odd types in hostile JSON cannot reach a library.

Bytes are decoded here, not in the libraries, so both parsers always get UTF-8: valid UTF-8
wins over any label (a legacy-encoded body almost never is valid UTF-8 by accident), then the
HTTP charset, then the XML declaration, each widened to the superset real servers mean
(EUC-KR -> CP949, GB2312 -> GB18030, ISO-8859-1 -> windows-1252, ...), and as a last resort
the first label (or UTF-8) with undecodable bytes replaced.

Parsing runs in the caller's thread with no deadline of its own: it relies on the body-size
cap of the fetcher and on the parsers' protections (lxml without entity resolution, expat's
amplification limits).
"""

from __future__ import annotations

import calendar
import codecs
import html.entities
import io
import json
import logging
import re
import time
import xml.parsers.expat as expat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import fastfeedparser
import feedparser

from bot.core.errors import NotAFeed
from bot.core.langdetect import detect_language
from bot.core.models import FeedEntry, ParsedFeed
from bot.core.sanitize import html_to_text
from bot.core.urls import canonical_url, url_host

_log = logging.getLogger(__name__)

SUMMARY_MAX = 2000
TITLE_MAX = 400
# Publishers' clocks and zones are often off by hours; beyond a day it is a wrong date.
FUTURE_SLACK = timedelta(days=1)
# fastfeedparser synthesises a description of at most 512 characters from the content;
# a description that short is either that or a teaser, and the content says more.
_SYNTH_DESCRIPTION_LEN = 512
_LANG_SAMPLE = 200
_REASON_MAX = 120


@dataclass(frozen=True)
class _RawEntry:
    title: str
    link: str
    guid: str
    summaries: tuple[str, ...]  # HTML candidates, best first
    published: datetime | None


@dataclass(frozen=True)
class _RawFeed:
    title: str
    site: str
    entries: tuple[_RawEntry, ...]
    warning: str | None = None


# ---------------------------------------------------------------- bytes and encodings

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# What servers and declarations say, widened to what they mean.
_SUPERSETS = {
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "iso8859-9": "cp1254",
}
_ALIASES = {"windows-949": "cp949", "x-windows-949": "cp949", "x-sjis": "cp932", "x-gbk": "gbk"}
# Text codecs that decode escape syntax rather than a character set.
_REFUSED_CODECS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "utf-7", "punycode", "idna", "undefined"}
)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\"';,\s]+)", re.IGNORECASE)
_XML_DECL = re.compile(rb"\s*<\?xml[^>]{0,300}?\?>")
_DECL_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']{0,40})["']""", re.IGNORECASE)
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f]")


@dataclass(frozen=True)
class _Decoded:
    data: bytes  # UTF-8 without BOM; declaration says utf-8 or nothing
    encoding: str
    lossy: bool


def _codec(label: str | None) -> str | None:
    """A Python codec for a charset label, widened to its superset, or None if unusable."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_ALIASES.get(label, label)).name
    except LookupError:
        return None
    if name in _REFUSED_CODECS:
        return None
    return _SUPERSETS.get(name, name)


def _declared_encoding(data: bytes) -> str | None:
    decl = _XML_DECL.match(data, 0, 400)
    if decl is None:
        return None
    found = _DECL_ENCODING.search(decl.group(0))
    return found.group(1).decode("ascii", "replace") if found else None


def _with_utf8_declaration(data: bytes) -> bytes:
    """The same document with its XML declaration saying what the bytes now are."""
    decl = _XML_DECL.match(data, 0, 400)
    if decl is None or not _DECL_ENCODING.search(decl.group(0)):
        return data
    fixed = _DECL_ENCODING.sub(b'encoding="utf-8"', decl.group(0), count=1)
    return fixed + data[decl.end() :]


def _transcode(text: str, encoding: str, lossy: bool) -> _Decoded:
    data = _with_utf8_declaration(text.lstrip("\ufeff").encode("utf-8", "replace"))
    return _Decoded(data, encoding, lossy)


def _decode(body: bytes, content_type: str | None) -> _Decoded:
    """UTF-8 bytes for the parsers, following the policy in the module docstring."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            rest = body[len(bom) :]
            try:
                return _transcode(rest.decode(encoding), encoding, False)
            except UnicodeDecodeError:
                return _transcode(rest.decode(encoding, "replace"), encoding, True)
    wide = _wide_encoding(body)
    if wide is not None:
        try:
            return _transcode(body.decode(wide), wide, False)
        except UnicodeDecodeError:
            return _transcode(body.decode(wide, "replace"), wide, True)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        declared = _declared_encoding(body)
        if declared is not None and _codec(declared) != "utf-8":
            body = _with_utf8_declaration(body)
        return _Decoded(body, "utf-8", False)
    labels: list[str] = []
    for label in (_charset_of(content_type), _declared_encoding(body)):
        codec = _codec(label)
        if codec and codec not in labels and not codec.startswith(("utf-16", "utf-32")):
            labels.append(codec)
    for codec in labels:
        try:
            return _transcode(body.decode(codec), codec, False)
        except (UnicodeDecodeError, LookupError):
            continue
    for codec in [*labels, "utf-8"]:
        try:
            return _transcode(body.decode(codec, "replace"), codec, True)
        except LookupError:
            continue
    return _transcode(body.decode("utf-8", "replace"), "utf-8", True)  # pragma: no cover


def _wide_encoding(body: bytes) -> str | None:
    """UTF-16 or UTF-32 without a byte-order mark, told by where the zero bytes of ASCII
    markup fall (as XML 1.0 appendix F suggests); None for anything else."""
    head = body[:64]
    head = head[: len(head) // 4 * 4]
    if not head:
        return None

    def zero(start: int, step: int) -> bool:
        return not any(head[start::step])

    if zero(1, 4) and zero(2, 4) and zero(3, 4) and not zero(0, 4):
        return "utf-32-le"
    if zero(0, 4) and zero(1, 4) and zero(2, 4) and not zero(3, 4):
        return "utf-32-be"
    if zero(1, 2) and not zero(0, 2):
        return "utf-16-le"
    if zero(0, 2) and not zero(1, 2):
        return "utf-16-be"
    return None


def _charset_of(content_type: str | None) -> str | None:
    if not content_type:
        return None
    found = _CHARSET.search(content_type)
    return found.group(1) if found else None


def _binary_reason(body: bytes) -> str | None:
    """Why the raw body cannot be text markup, or None."""
    for magic, what in _BINARY_MAGIC:
        if body.startswith(magic):
            return what
    if body.startswith(tuple(bom for bom, _ in _BOMS)) or _wide_encoding(body):
        return None
    head = body[:1024]
    if b"\x00" in head or len(_CONTROL_BYTES.findall(head)) * 20 > len(head):
        return "binary data"
    return None


# ---------------------------------------------------------------- markup sniffing

# Each alternative starts differently and has one way to match, so matching stays linear.
_PROLOG_ITEM = re.compile(
    rb"\s*(?:<\?.*?\?>|<!--.*?-->|(<!DOCTYPE[^\[>]*(\[[^\]]*\])?\s*>))",
    re.DOTALL | re.IGNORECASE,
)
_ROOT_TAG = re.compile(rb"\s*<([A-Za-z_][\w.:-]{0,60})")
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_HAS_ITEMS = re.compile(rb"<(?:[\w-]+:)?(?:item|entry)[\s>/]", re.IGNORECASE)
_XHTML_TEXT = (b'type="xhtml"', b"type='xhtml'")
# HTML named references (&nbsp;, &eacute;, ...) are undefined in XML without a DTD; libxml2
# drops them with the text after them, so they become numeric references first.
_NAMED_REF = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);)([A-Za-z][A-Za-z0-9]{1,31});")
_PROLOG_SCAN = 65536


def _prolog(data: bytes) -> tuple[int, tuple[int, int] | None]:
    """Where the prolog (declarations, comments, DOCTYPE) ends, and the span of a DOCTYPE
    with an internal subset if there is one."""
    head = data[:_PROLOG_SCAN]
    pos = 0
    subset: tuple[int, int] | None = None
    while True:
        item = _PROLOG_ITEM.match(head, pos)
        if item is None or item.end() == pos:
            return pos, subset
        if item.group(2):
            subset = item.span(1)
        pos = item.end()


def _without_entity_declarations(data: bytes) -> tuple[bytes, bool]:
    """The document without its internal DTD subset, and whether entity declarations remain.

    The internal subset is the only place entities are declared, and so the only way to
    build an entity bomb; feeds have no use for one (HTML names are handled by _NAMED_REF).
    """
    if b"<!ENTITY" not in data:
        return data, False
    _end, subset = _prolog(data)
    if subset is not None:
        data = data[: subset[0]] + data[subset[1] :]
    return data, b"<!ENTITY" in data


def _root_tag(data: bytes) -> str | None:
    """Lower-case name of the first element, past declarations, comments and DOCTYPE."""
    end, _subset = _prolog(data)
    root = _ROOT_TAG.match(data, end, _PROLOG_SCAN + 256)
    return root.group(1).decode("ascii", "replace").lower() if root else None


def _not_a_feed_reason(data: bytes, root: str | None, detail: str | None) -> str:
    if root is not None:
        local = root.rsplit(":", 1)[-1]
        if local == "html":
            return "not a feed: looks like an HTML page"
        if local not in _FEED_ROOTS:
            return f"not a feed: XML document with root <{root}>"
    elif data.lstrip()[:1] != b"<":
        return "not a feed: plain text, not XML or JSON"
    else:
        return "not a feed: XML without any element"
    if detail:
        return f"not a feed: {_one_line(detail.split(' (first ', 1)[0])}"
    return "not a feed: no feed entries found"


def _numeric_ref(match: re.Match[bytes]) -> bytes:
    name = match.group(1).decode("ascii") + ";"
    chars = html.entities.html5.get(name)
    if chars is None:
        return match.group(0)
    return "".join(f"&#{ord(ch)};" for ch in chars).encode("ascii")


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= _REASON_MAX else line[: _REASON_MAX - 1] + "…"


# ---------------------------------------------------------------- dates


def parse_date(value: str | None) -> datetime | None:
    """RFC 822 or ISO 8601 to an aware UTC datetime; a missing zone means UTC; None if not."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    parsed: datetime | None = None
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if parsed is None:
        return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _struct_to_utc(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _clamp(published: datetime | None, now: datetime) -> datetime | None:
    if published is not None and published > now + FUTURE_SLACK:
        return now
    return published


# ---------------------------------------------------------------- readers


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first_value(items: Any) -> str:
    """The `value` of the first dict in a list (feed `content` blocks)."""
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("value"), str):
                return str(item["value"])
    return ""


def _summaries(description: str, content: str, extra: str = "") -> tuple[str, ...]:
    if content and len(description) <= _SYNTH_DESCRIPTION_LEN:
        return tuple(s for s in (content, description, extra) if s)
    return tuple(s for s in (description, content, extra) if s)


def _media_description(entry: Any) -> str:
    media = entry.get("media_content")
    if isinstance(media, list):
        for item in media:
            if isinstance(item, dict) and isinstance(item.get("description"), str):
                return str(item["description"])
    return ""


def _from_fast(parsed: Any) -> _RawFeed:
    feed = parsed.get("feed") or {}
    entries = []
    for item in parsed.get("entries") or ():
        entries.append(
            _RawEntry(
                title=_text(item.get("title")),
                link=_text(item.get("link")),
                guid=_text(item.get("id")),
                summaries=_summaries(
                    _text(item.get("description")),
                    _first_value(item.get("content")),
                    _media_description(item),
                ),
                published=parse_date(_text(item.get("published")) or _text(item.get("updated"))),
            )
        )
    return _RawFeed(_text(feed.get("title")), _text(feed.get("link")), tuple(entries))


def _from_feedparser(data: bytes, feed_url: str) -> tuple[_RawFeed, bool]:
    """The slow, lenient reading; also whether feedparser recognised a feed format at all."""
    result = feedparser.parse(
        io.BytesIO(data),
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": feed_url,
        },
        resolve_relative_uris=True,
        sanitize_html=True,
    )
    entries = []
    for item in result.get("entries") or ():
        entries.append(
            _RawEntry(
                title=_text(item.get("title")),
                link=_text(item.get("link")),
                guid=_text(item.get("id")),
                summaries=_summaries(_text(item.get("summary")), _first_value(item.get("content"))),
                published=_struct_to_utc(item.get("published_parsed"))
                or _struct_to_utc(item.get("updated_parsed")),
            )
        )
    feed = result.get("feed") or {}
    raw = _RawFeed(_text(feed.get("title")), _text(feed.get("link")), tuple(entries))
    recognised = bool(result.get("version")) or (not result.get("bozo") and bool(feed))
    return raw, recognised


# expat errors that mean the document stops before its end (a cut download).
_CUT_SHORT = frozenset(
    expat.errors.codes[message]
    for message in (
        expat.errors.XML_ERROR_NO_ELEMENTS,
        expat.errors.XML_ERROR_UNCLOSED_TOKEN,
        expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
        expat.errors.XML_ERROR_PARTIAL_CHAR,
    )
)


def _checked(raw: _RawFeed, data: bytes) -> _RawFeed:
    """`raw` with a one-line warning if the document is not well-formed XML, and without
    its last entry when the document was cut off inside that entry (its link or text may
    be cut too)."""
    parser = expat.ParserCreate()
    try:
        parser.Parse(data, True)
    except expat.ExpatError as err:
        warning = f"ill-formed XML: {expat.ErrorString(err.code)} (line {err.lineno})"
        entries = raw.entries
        cut_short = err.code in _CUT_SHORT and err.lineno > data.count(b"\n")
        if cut_short and entries and _inside_last_entry(data):
            entries = entries[:-1]
            warning += "; last entry cut off"
        return _RawFeed(raw.title, raw.site, entries, warning)
    except (LookupError, ValueError) as exc:  # e.g. an encoding expat does not know
        return _RawFeed(raw.title, raw.site, raw.entries, f"ill-formed XML: {_one_line(str(exc))}")
    return raw


def _inside_last_entry(data: bytes) -> bool:
    opened = max(data.rfind(b"<item"), data.rfind(b"<entry"), data.rfind(b"<ITEM"))
    closed = max(data.rfind(b"</item"), data.rfind(b"</entry"), data.rfind(b"</ITEM"))
    return opened > closed


def _misread(raw: _RawFeed, data: bytes) -> bool:
    """Signs that fastfeedparser lost what feedparser would find."""
    if not raw.entries:
        return _HAS_ITEMS.search(data) is not None
    if any(not entry.title for entry in raw.entries):
        return any(marker in data for marker in _XHTML_TEXT)
    return False


def _read_xml(data: bytes, feed_url: str) -> _RawFeed:
    data, declares_entities = _without_entity_declarations(data)
    if b"&" in data:
        data = _NAMED_REF.sub(_numeric_ref, data)
    raw = _choose_reading(data, feed_url, declares_entities)
    if declares_entities:
        return _RawFeed(raw.title, raw.site, raw.entries, "entity declarations ignored")
    return _checked(raw, data)


def _choose_reading(data: bytes, feed_url: str, declares_entities: bool) -> _RawFeed:
    """fastfeedparser's reading, or feedparser's when it finds what the fast one missed."""
    fast: _RawFeed | None = None
    detail: str | None = None
    try:
        fast = _from_fast(fastfeedparser.parse(data, include_tags=False, include_enclosures=False))
    except Exception as exc:  # the library raises ValueError, but hostile input finds others
        detail = str(exc)
        _log.debug("fastfeedparser rejected %s: %s", feed_url, _one_line(detail))
    if declares_entities:
        # Declarations outside a normal prolog (or "<!ENTITY" in text): expat-based readers
        # would expand them, so only fastfeedparser (no entity expansion) reads this body.
        if fast is None:
            raise NotAFeed(_not_a_feed_reason(data, _root_tag(data), detail))
        return fast
    if fast is not None and not _misread(fast, data):
        return fast
    root = _root_tag(data)
    if fast is None and root is not None and root.rsplit(":", 1)[-1] not in _FEED_ROOTS:
        raise NotAFeed(_not_a_feed_reason(data, root, detail))
    if fast is None and detail and "HTML" in detail:
        raise NotAFeed("not a feed: looks like an HTML page")
    slow, recognised = _from_feedparser(data, feed_url)
    if fast is not None and (len(fast.entries) > len(slow.entries) or not slow.entries):
        return fast
    if slow.entries or recognised:
        return slow
    raise NotAFeed(_not_a_feed_reason(data, root, detail))


def _json_str(item: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _json_id(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _read_json(data: bytes) -> _RawFeed:
    """JSON Feed 1.0/1.1; anything else in JSON is not a feed."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise NotAFeed(f"not a feed: invalid JSON ({_one_line(str(exc))})") from exc
    if not isinstance(doc, dict):
        raise NotAFeed("not a feed: JSON document is not a JSON Feed")
    items = doc.get("items")
    version = doc.get("version")
    is_feed = isinstance(version, str) and "jsonfeed.org" in version
    if not isinstance(items, list):
        if is_feed:
            return _RawFeed(_json_str(doc, "title"), _json_str(doc, "home_page_url"), ())
        raise NotAFeed("not a feed: JSON document is not a JSON Feed")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        summary = _json_str(item, "summary")
        content = _json_str(item, "content_html", "content_text")
        entries.append(
            _RawEntry(
                title=_json_str(item, "title"),
                link=_json_str(item, "url", "external_url"),
                guid=_json_id(item.get("id")),
                summaries=_summaries(summary, content),
                published=parse_date(_json_str(item, "date_published", "date_modified")),
            )
        )
    return _RawFeed(_json_str(doc, "title"), _json_str(doc, "home_page_url"), tuple(entries))


# ---------------------------------------------------------------- assembly


def _entry(
    raw: _RawEntry, base: str, feed_url: str, source: str, now: datetime
) -> FeedEntry | None:
    title = html_to_text(raw.title, TITLE_MAX, single_line=True)
    url = canonical_url(raw.link, base) if raw.link else ""
    # fastfeedparser fills a missing id with the link; that is no identifier of its own.
    guid = raw.guid.strip() or None
    if guid is not None and guid == raw.link.strip():
        guid = None
    if not url and guid and guid.lower().startswith(("http://", "https://")):
        url = canonical_url(guid)
    if not title and not url:
        return None
    summary = ""
    for candidate in raw.summaries:
        summary = html_to_text(candidate, SUMMARY_MAX)
        if summary:
            break
    lang_sample = f"{title} {summary[:_LANG_SAMPLE]}".strip()
    return FeedEntry(
        url=url,
        title=title,
        summary=summary,
        published=_clamp(raw.published, now),
        source=source,
        feed_url=feed_url,
        guid=guid,
        lang=detect_language(lang_sample),
    )


def _assemble(raw: _RawFeed, feed_url: str, source: str | None, now: datetime) -> ParsedFeed:
    feed_title = html_to_text(raw.title, TITLE_MAX, single_line=True) or None
    site = canonical_url(raw.site, feed_url) if raw.site else ""
    base = site or feed_url
    outlet = source or feed_title or url_host(feed_url)
    entries = []
    for item in raw.entries:
        entry = _entry(item, base, feed_url, outlet, now)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(title=feed_title, entries=tuple(entries), warning=raw.warning)


def _parse(
    body: bytes, feed_url: str, content_type: str | None, source: str | None, now: datetime
) -> ParsedFeed:
    if not body or not body.strip():
        raise NotAFeed("not a feed: empty body")
    binary = _binary_reason(body)
    if binary:
        raise NotAFeed(f"not a feed: {binary}")
    decoded = _decode(body, content_type)
    data = decoded.data
    start = data[:64].lstrip()[:1]
    if not start:
        raise NotAFeed("not a feed: empty body")
    raw = _read_json(data) if start in (b"{", b"[") else _read_xml(data, feed_url)
    if decoded.lossy:
        note = f"undecodable bytes replaced ({decoded.encoding})"
        warning = f"{raw.warning}; {note}" if raw.warning else note
        raw = _RawFeed(raw.title, raw.site, raw.entries, warning)
    return _assemble(raw, feed_url, source, now)


def parse_feed(
    body: bytes,
    *,
    feed_url: str,
    content_type: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse a fetched body into entries; NotAFeed (one-line reason) when it holds no feed.

    A well-formed feed with no items is a ParsedFeed with no entries, not an error. Anything
    unexpected from the libraries on hostile input also becomes NotAFeed.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        return _parse(body, feed_url, content_type, source, moment)
    except NotAFeed:
        raise
    except Exception as exc:
        _log.warning("feed parser failed on %s: %s", feed_url, _one_line(repr(exc)))
        raise NotAFeed(f"not a feed: parser failed ({type(exc).__name__})") from exc
