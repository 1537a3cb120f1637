"""Fold reports of the same event (across outlets and languages) into one story.

Incremental: each new relevant item is compared only with recent stories that share an entity,
a figure or a rare word with it (an inverted index kept in memory and seeded from the store), so
the cost per item stays flat as the store grows.

A story is compared member by member and the scores averaged (average link), each discounted
by how far apart in time the two reports are. Comparing against the union of everything a story
has gathered lets one broad report chain neighbouring events of a busy programme into a single
story; averaging does not. Time comes from the feed's date and from dates the text names, so an
undated report, or one stamped when its feed was regenerated, still lands in its week.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta

from bot.core.datemention import full_dates
from bot.core.ports import StoryCandidate
from bot.core.storyprint import (
    Fingerprint,
    comparable_total,
    fingerprint,
    harmonic_share,
    kind_weight,
    same_actors,
)

WINDOW = timedelta(days=45)  # reports further apart than this are of different events
DECAY_DAYS = 14.0  # two reports this far apart count half as alike
UNDATED = 0.6  # discount when either side has no date at all
THRESHOLD = 0.13
MAX_MEMBERS = 8  # a story is judged by its latest reports
MAX_CANDIDATES = 6
COMMON_KEY = 60  # a key shared by more stories than this does not nominate candidates


class Member:
    """One report inside a story: its fingerprint and the days it is known to be about."""

    __slots__ = ("_line", "_totals", "_totals_at", "days", "print")

    def __init__(self, print: Fingerprint, days: frozenset[date]) -> None:
        self.print = print
        self.days = days
        self._line = ""
        self._totals: dict[str, float] = {}
        self._totals_at = -1

    def totals(self, weight: Callable[[str], float], stories: int) -> dict[str, float]:
        """Feature weight per family; reused until the story count has grown a tenth, since
        inverse story frequencies drift only slowly and this is the hot loop of grouping."""
        if self._totals_at < 0 or stories > self._totals_at * 1.1 + 8:
            self._totals = self.print.family_totals(weight)
            self._totals_at = stories
        return self._totals

    def line(self) -> str:
        """This member's line in the story's stored signature (made once: stories re-save)."""
        if not self._line:
            days = ",".join(sorted(d.isoformat() for d in self.days))
            self._line = f"@{days} {self.print.signature()}"
        return self._line


def time_factor(a: frozenset[date], b: frozenset[date]) -> float:
    """1.0 for the same day, 0.5 at DECAY_DAYS apart, 0 beyond WINDOW; UNDATED if unknown."""
    if not a or not b:
        return UNDATED
    if len(a) == 1 and len(b) == 1:
        gap = abs((next(iter(a)) - next(iter(b))).days)
    else:
        gap = min(abs((x - y).days) for x in a for y in b)
    return 0.0 if gap > WINDOW.days else 1.0 / (1.0 + gap / DECAY_DAYS)


def encode_members(members: Iterable[Member]) -> str:
    """The story's `signature` column: one line per member, oldest first."""
    return "\n".join(m.line() for m in members)


def decode_members(sig: str, countries: Iterable[str], event_at: datetime | None) -> list[Member]:
    """Members back from `encode_members`; a pre-member signature becomes a single member."""
    countries = tuple(countries)
    members = []
    for line in sig.splitlines():
        head, _, rest = line.partition(" ")
        if head.startswith("@"):
            days = frozenset(date.fromisoformat(d) for d in head[1:].split(",") if d)
            members.append(Member(Fingerprint.from_signature(rest, countries), days))
        elif line.strip():
            days = frozenset({event_at.date()}) if event_at else frozenset()
            members.append(Member(Fingerprint.from_signature(line, countries), days))
    return members


def story_id_for(article_id: str) -> str:
    return "s" + hashlib.blake2b(article_id.encode(), digest_size=6).hexdigest()


class StoryGrouper:
    """Assigns story ids; holds recent stories in memory, indexed by their salient tokens."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._stories: dict[str, StoryCandidate] = {}
        self._members: dict[str, list[Member]] = {}
        self._keys: dict[str, frozenset[str]] = {}
        self._index: dict[str, set[str]] = defaultdict(set)
        self._df: dict[str, int] = defaultdict(int)
        self._background_df: dict[str, int] = defaultdict(int)
        self._background_n = 0

    def add_background(
        self, title: str, summary: str, entities: Iterable[str], countries: Iterable[str]
    ) -> None:
        """Count a report's keys toward how common they are, without making it a story.

        On a young store every key looks rare, so a programme's usual actors would weigh as
        much as a figure only one event has; a background of known reports fixes that.
        """
        self._background_n += 1
        for key in fingerprint(title, summary, entities, countries).features:
            self._background_df[key] += 1

    def seed(self, stories: Iterable[StoryCandidate]) -> None:
        for story in stories:
            if story.relevant:
                members = decode_members(story.signature, story.countries, story.event_at)
                if members:
                    self._remember(story, members)

    def forget_before(self, cutoff: datetime) -> int:
        """Drop stories last reported before `cutoff`; how many went.

        Keeps a long-running process to the same horizon a restart seeds from, and its memory
        bounded by that horizon rather than by everything it has ever grouped.
        """
        old = [sid for sid, story in self._stories.items() if story.last_seen < cutoff]
        for sid in old:
            for key in self._keys.pop(sid, frozenset()):
                self._index[key].discard(sid)
                self._df[key] -= 1
                if not self._index[key]:
                    del self._index[key]
                    self._df.pop(key, None)
            del self._stories[sid]
            del self._members[sid]
        return len(old)

    def _weight(self, key: str) -> float:
        """Inverse story frequency: a word most stories share says little about sameness."""
        n = len(self._stories) + self._background_n + 1
        df = self._df.get(key, 0) + self._background_df.get(key, 0)
        return (math.log((n + 1) / (df + 1)) + 1.0) * kind_weight(key)

    def _remember(self, story: StoryCandidate, members: list[Member]) -> None:
        old = self._keys.get(story.id, frozenset())
        before = self._members.get(story.id)
        if before and members[:-1] == before:  # one report added, none dropped
            keys = old | members[-1].print.features
        else:
            keys = frozenset().union(*(m.print.features for m in members))
        for key in old - keys:
            self._index[key].discard(story.id)
            self._df[key] -= 1
        for key in keys - old:
            self._index[key].add(story.id)
            self._df[key] += 1
        self._stories[story.id] = story
        self._members[story.id] = members
        self._keys[story.id] = keys

    def assign(
        self,
        *,
        article_id: str,
        title: str,
        url: str,
        summary: str,
        source: str,
        when: datetime,
        dated: bool,
        relevant: bool,
        countries: tuple[str, ...],
        topics: tuple[str, ...],
        entities: tuple[str, ...],
    ) -> StoryCandidate:
        """The story this item belongs to, updated with it (new or existing)."""
        alone = StoryCandidate(
            id=story_id_for(article_id),
            title=title,
            url=url,
            countries=countries,
            topics=topics,
            entities=tuple(sorted(entities)),
            signature="",
            relevant=relevant,
            first_seen=when,
            last_seen=when,
            event_at=when if dated else None,
            article_count=1,
            sources=(source,),
        )
        if not relevant:  # not grouped: each such item is its own story, no fingerprint needed
            return alone
        member = Member(
            fingerprint(title, summary, entities, countries),
            frozenset({when.date()} if dated else ()) | full_dates(f"{title}\n{summary}"),
        )
        best = self._best_match(member)
        if best is None:
            story = replace(alone, signature=encode_members([member]))
            self._remember(story, [member])
            return story
        story = self._stories[best]
        members = [*self._members[best], member][-MAX_MEMBERS:]
        updated = replace(
            story,
            countries=tuple(sorted(set(story.countries) | set(countries))),
            topics=tuple(dict.fromkeys([*story.topics, *topics])),
            entities=tuple(sorted(set(story.entities) | set(entities))),
            signature=encode_members(members),
            last_seen=max(story.last_seen, when),
            event_at=story.event_at or (when if dated else None),
            article_count=story.article_count + 1,
            sources=tuple(dict.fromkeys([*story.sources, source])),
        )
        self._remember(updated, members)
        return updated

    def _best_match(self, item: Member) -> str | None:
        weights = {key: self._weight(key) for key in item.print.features}

        def weight(key: str) -> float:
            found = weights.get(key)
            if found is None:
                found = weights[key] = self._weight(key)
            return found

        nominated: dict[str, float] = defaultdict(float)
        for key, w in list(weights.items()):
            ids = self._index.get(key)
            if ids and len(ids) <= COMMON_KEY:
                for sid in ids:
                    nominated[sid] += w
        best_id, best_score = None, self.threshold
        fp, stories = item.print, len(self._stories)
        features, item_totals = fp.features, fp.family_totals(weight)
        item_comparable: dict[frozenset[str], float] = {}
        for sid in sorted(nominated, key=nominated.__getitem__, reverse=True)[:MAX_CANDIDATES]:
            members = self._members[sid]
            needed = best_score * len(members)  # the summed score this story must reach
            total = 0.0
            for left, other in enumerate(reversed(members)):
                if total + (len(members) - left) <= needed:
                    break  # even perfect matches with the rest could not win
                factor = time_factor(item.days, other.days)
                if not factor or not same_actors(fp, other.print):
                    continue
                shared = sum(map(weights.__getitem__, features & other.print.features))
                if not shared:
                    continue
                scripts = other.print.scripts
                mine = item_comparable.get(scripts)
                if mine is None:
                    mine = item_comparable[scripts] = comparable_total(item_totals, scripts)
                theirs = comparable_total(other.totals(weight, stories), fp.scripts)
                total += factor * harmonic_share(shared, mine, theirs)
            score = total / len(members)
            if score >= best_score:
                best_id, best_score = sid, score
        return best_id
