"""The 200 captured real feeds, through the whole pipeline into a real store.

General sites are almost never about national AI efforts: at most 1% of their items may come
out relevant. Nothing may crash, and no active markup may reach stored text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.classify import Classifier
from bot.core.errors import FeedError
from bot.core.gazetteer import Gazetteer
from bot.core.ingest import Ingestor
from bot.core.parse import parse_feed
from storage.db import open_database
from storage.repositories import Store

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realworld" / "real-feeds-200"
ACTIVE = re.compile(
    r"(?i)<script|<[a-z][^>]*\son[a-z]+\s*=|(href|src|action)\s*=\s*['\"]?\s*javascript:"
)


@pytest.mark.skipif(not REAL.exists(), reason="../shared/realworld not present")
def test_real_feeds_ingest_with_few_false_positives(tmp_path: Path) -> None:
    store = Store(open_database(tmp_path / "real.db"))
    ingestor = Ingestor(store, Classifier(Gazetteer.load()))
    files = sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix != ".md")
    assert len(files) >= 150
    reasons = []
    for path in files:
        try:
            parsed = parse_feed(path.read_bytes(), feed_url=path.as_uri())
        except FeedError as exc:
            reasons.append(f"{path.name}: {exc.reason}")
            continue
        source_id = store.sources.ensure(path.as_uri(), kind="file")
        ingestor.ingest(parsed.entries, source_id=source_id)
    articles = list(store.articles.export())
    relevant = [a for a in articles if a.relevant]
    share = len(relevant) / max(len(articles), 1)
    print(
        f"real feeds: {len(files)} files, {len(articles)} items, {len(relevant)} relevant "
        f"({share:.2%}), {len(reasons)} not feeds"
    )
    assert len(articles) > 5000
    assert share <= 0.01, [a.title for a in relevant][:20]
    for a in articles:
        assert not ACTIVE.search(a.title + a.summary + a.url), a.url
    store.close()
