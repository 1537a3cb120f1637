"""Feed lists: the built-in one, plain URL files and OPML, both ways."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import quoteattr

from bot.core.errors import UsageError


@dataclass(frozen=True)
class FeedRef:
    url: str
    name: str | None = None


def parse_url_lines(text: str) -> list[FeedRef]:
    refs: list[FeedRef] = []
    for line in text.splitlines():
        url, _, rest = line.strip().partition(" ")
        if url.startswith(("http://", "https://")):
            refs.append(FeedRef(url, rest.strip().lstrip("#").strip() or None))
    return refs


def parse_opml(text: str) -> list[FeedRef]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise UsageError(f"not a valid OPML file: {exc}") from None
    refs = [
        FeedRef(node.attrib["xmlUrl"].strip(), node.attrib.get("title") or node.attrib.get("text"))
        for node in root.iter("outline")
        if node.attrib.get("xmlUrl", "").strip().startswith(("http://", "https://"))
    ]
    return refs


def read_feed_file(path: Path) -> list[FeedRef]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read feed list {path}: {exc.strerror}") from None
    if text.lstrip().startswith("<"):
        return parse_opml(text)
    return parse_url_lines(text)


def builtin_feeds() -> list[FeedRef]:
    text = resources.files("bot").joinpath("data/default_feeds.txt").read_text("utf-8")
    return parse_url_lines(text)


def to_opml(refs: list[FeedRef], title: str = "Sovereign Watch feeds") -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{title}</title></head>",
        "  <body>",
    ]
    for ref in refs:
        name = quoteattr(ref.name or ref.url)
        lines.append(
            f'    <outline type="rss" text={name} title={name} xmlUrl={quoteattr(ref.url)}/>'
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)
