"""Turn the dev articles into feed files the way the held-out set is served.

One file per outlet: RSS 2.0 or Atom for English outlets, RSS in EUC-KR for Korean ones,
summaries wrapped in HTML.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EVAL = SHARED / "eval"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "outlet"


def _rss(outlet: str, items: list[dict[str, Any]], encoding: str) -> bytes:
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(outlet)}</title><link>https://example.org/</link>",
        "<description>dev feed</description>",
    ]
    for item in items:
        date = ""
        if item.get("published"):
            when = datetime.fromisoformat(item["published"] + "T09:00:00+00:00")
            date = f"<pubDate>{format_datetime(when)}</pubDate>"
        html = f"<p>{escape(item['summary'])}</p>"
        parts.append(
            f"<item><title>{escape(item['title'])}</title><link>{escape(item['url'])}</link>"
            f'<guid isPermaLink="false">{escape(item["id"])}</guid>{date}'
            f"<description><![CDATA[{html}]]></description></item>"
        )
    parts.append("</channel></rss>")
    text = "\n".join(parts)
    return (
        text.encode("euc-kr", errors="xmlcharrefreplace")
        if encoding == "EUC-KR"
        else (text.encode("utf-8"))
    )


# What an Atom entry carries when the article has no date (Atom requires <updated>, so
# generators differ): a fixed stamp (the default scoring here), the generation time, or nothing.
UNDATED_ATOM = {"fixed": "2026-02-01", "now": "2026-11-23", "omit": None}


def _atom(outlet: str, items: list[dict[str, Any]], undated: str = "fixed") -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(outlet)}</title><id>urn:dev:{_slug(outlet)}</id>",
        "<updated>2026-02-01T00:00:00Z</updated>",
    ]
    for item in items:
        day = item.get("published") or UNDATED_ATOM[undated]
        updated = f"{day}T09:00:00Z" if day else ""
        parts.append(
            f"<entry><title>{escape(item['title'])}</title>"
            f'<link href="{escape(item["url"])}"/><id>urn:dev:{escape(item["id"])}</id>'
            + (f"<published>{updated}</published>" if item.get("published") else "")
            + (f"<updated>{updated}</updated>" if updated else "")
            + f'<summary type="html">{escape("<p>" + escape(item["summary"]) + "</p>")}</summary>'
            "</entry>"
        )
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def write_feeds(
    articles: list[dict[str, Any]], folder: Path, *, undated_atom: str = "fixed"
) -> list[Path]:
    """Write one feed file per outlet; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    by_outlet: dict[str, list[dict[str, Any]]] = {}
    for item in articles:
        by_outlet.setdefault(item["source"], []).append(item)
    paths = []
    for n, (outlet, items) in enumerate(sorted(by_outlet.items())):
        korean = any(i["lang"] == "ko" for i in items)
        if korean:
            body, ext = _rss(outlet, items, "EUC-KR"), "xml"
        elif n % 2:
            body, ext = _atom(outlet, items, undated_atom), "atom"
        else:
            body, ext = _rss(outlet, items, "utf-8"), "xml"
        path = folder / f"{n:02d}-{_slug(outlet)}.{ext}"
        path.write_bytes(body)
        paths.append(path)
    return paths
