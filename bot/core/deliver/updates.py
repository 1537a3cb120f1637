"""What an alert says about its story right now: built for the first send and rebuilt for each
"also reported by" edit, when later reports of the same story name more outlets.

Edits are pulled, not pushed: the worker asks the store for sent alerts whose story has gained
outlets since (see `OutboxRepo.edits_due`) and edits each at most once per interval; a failed
edit is dropped, since the alert itself already went out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.core.deliver.render import mute_buttons
from bot.core.models import AlertMessage
from bot.core.ports import ArticleRepo


class AlertBuilder:
    """AlertMessages from the store, cached briefly: one story fans out to many chats."""

    def __init__(
        self, articles: ArticleRepo, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.articles = articles
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str | None], tuple[float, AlertMessage | None]] = {}

    def alert(
        self, story_id: str, article_id: str | None = None, *, fresh: bool = False
    ) -> AlertMessage | None:
        """The alert for a story, led by `article_id` (the report that caused it); None when
        the story is gone from the store."""
        key = (story_id, article_id)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now and not fresh:
            return hit[1]
        built = self._build(story_id, article_id)
        if len(self._cache) > 4_096:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + self.ttl, built)
        return built

    def _build(self, story_id: str, article_id: str | None) -> AlertMessage | None:
        story = self.articles.story(story_id)
        if story is None:
            return None
        reports = self.articles.articles_of_story(story_id)
        lead = next((a for a in reports if a.id == article_id), reports[0] if reports else None)
        outlets = list(story.sources) or list(dict.fromkeys(a.source for a in reports))
        if lead is None:
            return AlertMessage(
                story_id=story.id,
                title=story.title,
                url=story.url,
                summary="",
                outlet=outlets[0] if outlets else "",
                published=story.first_seen,
                countries=story.countries,
                topics=story.topics,
                also_reported_by=tuple(outlets[1:]),
                buttons=mute_buttons(story.countries, story.topics),
            )
        return AlertMessage(
            story_id=story.id,
            title=lead.title or story.title,
            url=lead.url or story.url,
            summary=lead.summary,
            outlet=lead.source,
            published=lead.published or lead.fetched_at,
            countries=story.countries or lead.countries,
            topics=story.topics or lead.topics,
            also_reported_by=tuple(o for o in outlets if o != lead.source),
            buttons=mute_buttons(story.countries or lead.countries, story.topics or lead.topics),
        )


def outlets_shown(alert: AlertMessage) -> int:
    """How many outlets a rendered alert names; compared with the story's count later."""
    return 1 + len(alert.also_reported_by)
