"""The one object every adapter calls: commands in, platform-neutral Replies out."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from bot import __version__
from bot.core.answer_text import question_language, text
from bot.core.citations import neutralise_mentions
from bot.core.deliver.digest import CATCHUP_DAYS, CATCHUP_STORIES, build_catchup, matching
from bot.core.deliver.match import keyword_in, spec_matches
from bot.core.errors import UsageError
from bot.core.extractive import ExtractiveAnswerer, source_of
from bot.core.followup import resolve_followup
from bot.core.gazetteer import Gazetteer, flag
from bot.core.models import (
    TOPICS,
    Answer,
    Article,
    Button,
    Mode,
    Reply,
    Source,
    Subscription,
    Target,
)
from bot.core.ports import StorePort
from bot.core.subscribe_parse import USAGE, describe, parse_subscribe
from bot.ops import metrics
from bot.ops.heartbeat import Heartbeat, heartbeat_key
from bot.ops.status import StatusFacts, status_lines

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
MAX_SUBSCRIPTIONS_PER_TARGET = 25
MEMORY_SECONDS = 30 * 60
LLMAnswer = Callable[[str, list[dict[str, str]]], Awaitable[Answer]]

COMMANDS: dict[str, str] = {
    "help": "what I can do",
    "ask": "ask a question, e.g. /ask What is Korea's sovereign AI program?",
    "latest": "the newest stories, optionally for a country or topic: /latest KR",
    "subscribe": "get alerts: " + USAGE,
    "unsubscribe": "stop alerts: /unsubscribe ID, or /unsubscribe all",
    "subscriptions": "the subscriptions of this chat",
    "digest": "a digest of the last day's stories for this chat",
    "why": "why a story was or was not delivered here: /why LINK (or reply /why to an alert)",
}


class BotService:
    def __init__(
        self,
        store: StorePort,
        gazetteer: Gazetteer,
        extractive: ExtractiveAnswerer,
        llm: LLMAnswer | None = None,
        owner_ids: Iterable[str] = (),
    ) -> None:
        self.owner_ids = frozenset(owner_ids)
        self.store = store
        self.gazetteer = gazetteer
        self.extractive = extractive
        self.llm = llm
        self._asked: dict[str, list[float]] = defaultdict(list)

    # --- questions --------------------------------------------------------------------------
    async def answer(self, question: str, *, memory_key: str | None = None) -> Answer:
        """Answer one question; `memory_key` enables follow-ups within a conversation."""
        started = time.perf_counter()
        result = await self._answer(question, memory_key=memory_key)
        metrics.answer_latency(time.perf_counter() - started, result.mode)
        return result

    async def _answer(self, question: str, *, memory_key: str | None) -> Answer:
        question = question.strip()
        lang = question_language(question)
        if not question:
            return Answer(answer=text("empty", lang), grounded=False, mode="extractive")
        note = ""
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            note = text("cut", lang).format(n=MAX_QUESTION_CHARS)
        history = self.store.conversations.get(memory_key, MEMORY_SECONDS) if memory_key else []
        effective = resolve_followup(question, history, self.gazetteer)
        result: Answer | None = None
        if self.llm is not None:
            try:
                result = await self.llm(effective, history)
            except Exception as exc:  # any endpoint trouble: the extractive answer still works
                # LLMAnswerer already logged why; note only that this answer fell back.
                log.info("answer fell back to extractive", extra={"reason": type(exc).__name__})
        if result is None:
            result = self.extractive.answer(effective)
        if memory_key:
            turn = {"q": effective, "a": result.answer[:300], "t": str(time.time())}
            try:
                self.store.conversations.put(memory_key, [*history[-4:], turn])
            except Exception as exc:  # a full or read-only store must not stop answers
                log.warning("conversation memory not saved", extra={"reason": str(exc)})
        if note:
            result = Answer(
                note + " " + result.answer,
                result.grounded,
                result.mode,
                result.sources,
                result.related,
            )
        return result

    async def ask(self, target: Target, user_id: str, question: str) -> Reply:
        result = await self.answer(question, memory_key=f"{target.key}:{user_id}")
        body = result.answer
        if not result.grounded and result.related:
            lang = question_language(question)
            lines = [text("maybe", lang)]
            lines += [f"• {neutralise_mentions(s.title)} ({s.url})" for s in result.related]
            body = body + "\n\n" + "\n".join(lines)
        return Reply(text=body, sources=result.sources, grounded=result.grounded, mode=result.mode)

    # --- information ------------------------------------------------------------------------
    def help(self) -> Reply:
        lines = [
            f"Sovereign Watch {__version__}: I follow national AI efforts (governments and "
            "national champions building their own models, compute and policy).",
            "Ask me anything in plain words, or use:",
        ]
        lines += [f"/{name} — {what}" for name, what in COMMANDS.items()]
        return Reply(text="\n".join(lines), title="Help")

    def latest(self, arg: str = "") -> Reply:
        arg = arg.strip()
        country = topic = None
        if arg:
            if arg.lower() in TOPICS:
                topic = arg.lower()
            else:
                country = self.gazetteer.country_code(arg)
                if country is None:
                    near = self.gazetteer.suggest_country(arg)
                    hint = f" Did you mean {near}?" if near else ""
                    return Reply(
                        text=f"I don't know the country or topic '{arg}'.{hint} "
                        f"Topics: {', '.join(TOPICS)}."
                    )
        articles = self.store.articles.latest(country=country, topic=topic, limit=5)
        if not articles:
            return Reply(text="No stories stored yet" + (f" for {arg}." if arg else "."))
        lines = [self._story_line(i, a) for i, a in enumerate(articles, 1)]
        title = "Latest stories" + (f": {arg}" if arg else "")
        return Reply(
            text="\n".join(lines), title=title, sources=tuple(source_of(a) for a in articles)
        )

    def _story_line(self, n: int, article: Article) -> str:
        flags = "".join(flag(c) for c in article.countries)
        date = article.published.date().isoformat() if article.published else ""
        return f"{n}. {flags} {article.title} — {article.source} {date}".replace("  ", " ")

    # --- subscriptions ----------------------------------------------------------------------
    def subscribe(self, target: Target, args: str) -> Reply:
        if not args.strip():
            buttons = tuple(
                Button(f"{flag(c)} {c}", f"sub:{c}")
                for c in ("KR", "JP", "CN", "IN", "FR", "DE", "GB", "US", "EU", "AE", "SA", "SG")
            ) + tuple(Button(t, f"sub:topic:{t}") for t in TOPICS)
            return Reply(
                text=f"Choose what to follow, or type it: {USAGE}\n"
                "e.g. /subscribe KR JP topic:compute kw:HyperCLOVA digest@09:00, "
                "/subscribe FR weekly@fri@17:00, /subscribe KR quiet@22:00-07:00, "
                "or /subscribe all for every story.",
                buttons=buttons,
            )
        try:
            spec = parse_subscribe(args, self.gazetteer)
        except UsageError as exc:
            return Reply(text=str(exc))
        if self.store.subscriptions.count_for(target) >= MAX_SUBSCRIPTIONS_PER_TARGET:
            return Reply(
                text=f"This chat already has {MAX_SUBSCRIPTIONS_PER_TARGET} "
                "subscriptions; remove one with /unsubscribe first."
            )
        self.store.subscriptions.set_paused(target, False)
        sub = self.store.subscriptions.add(target, spec)
        caught_up = self._queue_catchup(target, sub)
        extra = (
            f"\n{caught_up} matching stor{'y' if caught_up == 1 else 'ies'} from the last "
            f"{CATCHUP_DAYS} days will follow in one message."
            if caught_up
            else ""
        )
        return Reply(
            text=f"Subscribed (#{sub.id}): {describe(spec, self.gazetteer)}.\n"
            "See them with /subscriptions; stop with /unsubscribe "
            f"{sub.id}.{extra}"
        )

    def _queue_catchup(self, target: Target, sub: Subscription) -> int:
        """Queue the last week's matching stories as one message; how many it lists."""
        try:
            since = datetime.now(UTC) - timedelta(days=CATCHUP_DAYS)
            stories = self.store.outbox.story_texts_since(since, limit=1_000)
            target_id = self.store.subscriptions.target_id(target)
            if target_id is None:
                return 0
            names = self.gazetteer.country_name
            row = build_catchup(target_id, target, sub.id, sub.spec, stories, country_name=names)
            if row is None or not self.store.outbox.enqueue([row]):
                return 0
            return min(len(matching(stories, [sub.spec])), CATCHUP_STORIES)
        except Exception:  # the subscription stands even if the catch-up cannot be queued
            log.exception("catch-up not queued")
            return 0

    def unsubscribe(self, target: Target, arg: str) -> Reply:
        arg = arg.strip().lstrip("#")
        subs = self.store.subscriptions.for_target(target)
        if not subs:
            return Reply(text="This chat has no subscriptions.")
        if arg.lower() in ("all", "전체", "모두"):
            n = self.store.subscriptions.remove(target, None)
            return Reply(text=f"Removed all {n} subscriptions of this chat.")
        if not arg.isdigit():
            listing = "\n".join(f"#{s.id}: {describe(s.spec, self.gazetteer)}" for s in subs)
            return Reply(text="Which one? /unsubscribe ID or /unsubscribe all\n" + listing)
        if self.store.subscriptions.remove(target, int(arg)) == 0:
            return Reply(text=f"This chat has no subscription #{arg}. See /subscriptions.")
        return Reply(text=f"Removed subscription #{arg}.")

    def mute(self, target: Target, kind: str, value: str) -> Reply:
        """Stop alerts about one country or topic here: every subscription that would deliver it
        is narrowed (one that follows every country becomes every country but this one)."""
        countries = self.gazetteer.country_codes()
        everything = countries if kind == "country" else list(TOPICS)
        if value not in everything:
            return Reply(text="That button is no longer valid.")
        name = self.gazetteer.country_name(value) if kind == "country" else value
        subs = self.store.subscriptions.for_target(target)
        if not subs:
            return Reply(text="This chat has no subscriptions, so there is nothing to mute.")
        changed: list[str] = []
        for sub in subs:
            current = sub.spec.countries if kind == "country" else sub.spec.topics
            if current and value not in current:
                continue
            rest = tuple(v for v in (current or everything) if v != value)
            self.store.subscriptions.remove(target, sub.id)
            if not rest:
                changed.append(f"removed #{sub.id} (it followed only {name})")
                continue
            spec = (
                dataclasses.replace(sub.spec, countries=rest)
                if kind == "country"
                else dataclasses.replace(sub.spec, topics=rest)
            )
            new = self.store.subscriptions.add(target, spec)
            if current:
                changed.append(f"#{sub.id} is now #{new.id}: {describe(new.spec, self.gazetteer)}")
            else:
                changed.append(f"#{sub.id} is now #{new.id}: every {kind} but {name}")
        if not changed:
            return Reply(text=f"No subscription here follows {name}; nothing changed.")
        return Reply(text=f"Muted {name}: " + "; ".join(changed) + ". See /subscriptions.")

    def subscriptions(self, target: Target) -> Reply:
        subs = self.store.subscriptions.for_target(target)
        if not subs:
            return Reply(
                text="This chat has no subscriptions yet. Try /subscribe KR or /subscribe all."
            )
        lines = [f"#{s.id}: {describe(s.spec, self.gazetteer)}" for s in subs]
        if subs[0].paused:
            lines.append(f"(paused: {subs[0].paused_reason or 'by an operator'})")
        return Reply(text="\n".join(lines), title="Subscriptions")

    def digest(self, target: Target, hours: int = 24) -> Reply:
        subs = self.store.subscriptions.for_target(target)
        since = datetime.now(UTC) - timedelta(hours=hours)
        articles = [
            a
            for a in self.store.articles.latest(limit=60)
            if a.fetched_at is not None and a.fetched_at >= since
        ]
        if subs:
            articles = [
                a
                for a in articles
                if any(
                    spec_matches(s.spec, a.countries, a.topics, f"{a.title}\n{a.summary}")
                    for s in subs
                )
            ]
        if not articles:
            return Reply(text="Nothing new for this chat in the last day.")
        by_country: dict[str, list[Article]] = defaultdict(list)
        for a in articles:
            by_country[a.countries[0] if a.countries else "—"].append(a)
        lines: list[str] = []
        sources: list[Source] = []
        for code in sorted(by_country, key=lambda c: -len(by_country[c])):
            name = self.gazetteer.country_name(code) if code != "—" else "Other"
            lines.append(f"{flag(code) if code != '—' else ''} {name}".strip())
            for a in by_country[code]:
                sources.append(source_of(a))
                lines.append(f"  [{len(sources)}] {a.title} — {a.source}")
        return Reply(text="\n".join(lines), title="Digest", sources=tuple(sources))

    def why(self, target: Target, link: str) -> Reply:
        link = link.strip().strip("<>")
        if not link:
            return Reply(text="Give me the link of a story: /why LINK")
        article = self.store.articles.by_url(link)
        if article is None:
            return Reply(
                text="I have not stored that link, so it could not be delivered. "
                "Its feed may not be on my list (see `feeds list`)."
            )
        if not article.relevant:
            return Reply(
                text="I stored that item but judged it not about a national AI "
                "effort, so it was not sent anywhere."
            )
        subs = self.store.subscriptions.for_target(target)
        if not subs:
            return Reply(text="This chat has no subscriptions, so nothing is delivered here.")
        body = f"{article.title}\n{article.summary}"
        reasons: list[str] = []
        for sub in subs:
            spec = sub.spec
            if spec_matches(spec, article.countries, article.topics, body):
                mode = "in the digest" if spec.mode is Mode.DIGEST else "as an alert"
                return Reply(
                    text=f"It matches subscription #{sub.id} "
                    f"({describe(spec, self.gazetteer)}), so it goes here {mode}."
                )
            if spec.countries and not set(spec.countries) & set(article.countries):
                tagged = ", ".join(article.countries) or "no country"
                reasons.append(f"#{sub.id}: countries {', '.join(spec.countries)} vs {tagged}")
            elif spec.topics and not set(spec.topics) & set(article.topics):
                reasons.append(
                    f"#{sub.id}: topics {', '.join(spec.topics)} vs "
                    f"{', '.join(article.topics) or 'none'}"
                )
            elif spec.keywords and not any(keyword_in(k, body) for k in spec.keywords):
                reasons.append(f"#{sub.id}: none of the keywords appear")
            else:
                reasons.append(f"#{sub.id}: an excluded word appears")
        return Reply(text="It matched none of this chat's subscriptions:\n" + "\n".join(reasons))

    def why_message(self, target: Target, message_id: str) -> Reply | None:
        """Explain a message this chat got, found by its platform id (a reply to an alert);
        None when it was not one of the deliveries, so the caller can try its link instead."""
        row = self.store.outbox.by_message(target, message_id)
        if row is None:
            return None
        if row.kind != "alert" or not row.story_id:
            what = {"digest": "this chat's digest", "catchup": "the catch-up of a new subscription"}
            return Reply(
                text=f"That was {what.get(row.kind, 'a message from me')}: it lists the stories "
                "that matched this chat's digest subscriptions."
            )
        story = self.store.articles.story(row.story_id)
        about = f"“{story.title}” " if story is not None else "That story "
        sub = next(
            (s for s in self.store.subscriptions.for_target(target) if s.id == row.subscription_id),
            None,
        )
        if sub is None and row.subscription_id is None and story is not None:
            return self.why(target, story.url)  # queued without a note of its subscription
        if sub is None:
            return Reply(
                text=f"{about}was sent here by a subscription that has since been removed "
                f"(#{row.subscription_id}). See /subscriptions."
            )
        return Reply(
            text=f"{about}was sent here because it matched subscription #{sub.id} "
            f"({describe(sub.spec, self.gazetteer)})."
        )

    # --- operators ----------------------------------------------------------------------------
    def is_owner(self, target: Target, user_id: str) -> bool:
        """Operators: the console's user, and the user ids in SW_OWNER_IDS (`123` or
        `telegram:123`). Adapters routing `/status` themselves check this first."""
        if target.platform == "console":
            return True
        return user_id in self.owner_ids or f"{target.platform}:{user_id}" in self.owner_ids

    def status(self) -> Reply:
        """Feed health, last successful poll, outbox depth, adapters: for operators only."""
        facts = StatusFacts(
            sources=self.store.sources.all(),
            outbox_depth=self.store.outbox.depth(),
            heartbeats=[
                hb for hb in [Heartbeat.decode(self.store.meta.get(heartbeat_key()))] if hb
            ],
            now=datetime.now(UTC),
        )
        return Reply(text="\n".join(status_lines(facts, full=False)), title="Status")

    # --- text commands (console, Telegram) --------------------------------------------------
    async def handle_text(self, target: Target, user_id: str, line: str) -> Reply | None:
        """Dispatch one typed line: `/command args` or a plain question."""
        line = line.strip()
        if not line:
            return None
        if not line.startswith("/"):
            return await self.ask(target, user_id, line)
        head, _, args = line[1:].partition(" ")
        name = head.split("@", 1)[0].lower()
        if name in ("help", "start", "도움말"):
            return self.help()
        if name == "ask":
            if not args.strip():
                return Reply(text=text("empty", question_language(args)))
            return await self.ask(target, user_id, args)
        if name == "latest":
            return self.latest(args)
        if name == "subscribe":
            return self.subscribe(target, args)
        if name == "unsubscribe":
            return self.unsubscribe(target, args)
        if name == "subscriptions":
            return self.subscriptions(target)
        if name == "digest":
            return self.digest(target)
        if name == "why":
            return self.why(target, args)
        if name == "status":
            if not self.is_owner(target, user_id):
                return Reply(text="/status is for the bot's operators (set by SW_OWNER_IDS).")
            return self.status()
        known = ", ".join(f"/{c}" for c in COMMANDS)
        return Reply(text=f"I don't know the command /{name}. Try /help (commands: {known}).")
