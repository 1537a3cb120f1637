"""Making model text safe to post: real citations only, no pings, no leaked rules, short.

Pure string functions, shared by the whole-answer path and the streaming path so the text a
user watches arrive and the final answer agree (same renumbering, same neutralised mentions).
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
# `[3]`, `[1, 2]`, `[1][2]` (each bracket matched separately), full-width brackets too.
_CITE_RE = re.compile(r"[\[［]\s*(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\s*[\]］]")
_NUM_RE = re.compile(r"\d+")
# A dropped citation leaves "word ." or "word  word": tidy only what removal can cause.
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+([.,;:!?。])")
_DOUBLE_SPACE_RE = re.compile(r"[ \t]{2,}")
# Discord pings: @everyone, @here, <@id>, <@!id>, <@&role>, <#channel>.
_MENTION_RE = re.compile(r"@(?=everyone|here)|<(?=[@#][!&]?\d)", re.IGNORECASE)
_THINK_RE = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.!?。](?:\s*[\[［][\d,，\s]+[\]］])*(?=\s|$)")
_LEAK_WORDS = 10
_WORD_RE = re.compile(r"\w+")


def neutralise_mentions(text: str) -> str:
    """Put a zero-width space after the `@`/`<` of anything Discord would turn into a ping."""
    return _MENTION_RE.sub(lambda m: m.group(0) + ZWSP, text)


def strip_reasoning(text: str) -> str:
    """Drop `<think>...</think>` blocks that reasoning models put before the answer."""
    return _THINK_RE.sub("", text)


class CitationMap:
    """Renumbers valid citations 1..k in order of first use; remembers the order across calls."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.order: list[int] = []

    def _number(self, original: int) -> int | None:
        if not 1 <= original <= self.n_items:
            return None
        if original not in self.order:
            self.order.append(original)
        return self.order.index(original) + 1

    def apply(self, text: str) -> str:
        def repl(match: re.Match[str]) -> str:
            numbers: list[int] = []
            for raw in _NUM_RE.findall(match.group(1)):
                new = self._number(int(raw))
                if new is not None and new not in numbers:
                    numbers.append(new)
            return "".join(f"[{n}]" for n in sorted(numbers))

        return _CITE_RE.sub(repl, text)


def tidy_spaces(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    return _DOUBLE_SPACE_RE.sub(" ", text)


def clean_citations(text: str, n_items: int) -> tuple[str, list[int]]:
    """Drop citations outside 1..n_items, renumber the rest by first use.

    Returns the text and the original item numbers in their new order (new [k] is item
    `order[k-1]`).
    """
    cmap = CitationMap(n_items)
    return tidy_spaces(cmap.apply(text)).strip(), cmap.order


def cited_numbers(text: str) -> set[int]:
    return {int(n) for m in _CITE_RE.finditer(text) for n in _NUM_RE.findall(m.group(1))}


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending at a sentence end when one is not too far back."""
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text, 0, limit + 1) if m.end() <= limit]
    if ends and ends[-1] >= limit // 2:
        return text[: ends[-1]].rstrip()
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    # Never leave half a citation behind.
    open_at = max(cut.rfind("["), cut.rfind("［"))
    if open_at > max(cut.rfind("]"), cut.rfind("］")):
        cut = cut[:open_at]
    return cut.rstrip() + "…"


def _word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    toks = _WORD_RE.findall(text.lower())
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


class LeakGuard:
    """Spots an answer repeating `min_words` consecutive words of the prompt verbatim."""

    def __init__(self, prompt: str, min_words: int = _LEAK_WORDS) -> None:
        self.min_words = min_words
        self._secret = _word_ngrams(prompt, min_words)

    def leaks(self, answer: str) -> bool:
        return bool(self._secret) and not self._secret.isdisjoint(
            _word_ngrams(answer, self.min_words)
        )


def leaks_prompt(answer: str, prompt: str, min_words: int = _LEAK_WORDS) -> bool:
    return LeakGuard(prompt, min_words).leaks(answer)


class StreamCleaner:
    """Turns raw model deltas into safe deltas, holding back only what could still change.

    A delta is released once no citation bracket or mention is open at its end, so a ping or
    an invalid `[7]` split across two network chunks is still caught. A leading reasoning
    block is withheld until it closes.
    """

    _HOLD_MAX = 40

    def __init__(self, n_items: int) -> None:
        self.citations = CitationMap(n_items)
        self._raw = ""
        self._released = 0
        self._shown = False
        self._carry = ""
        self._thinking: bool | None = None  # unknown until the first characters arrive

    @property
    def order(self) -> list[int]:
        return self.citations.order

    def feed(self, delta: str) -> str:
        self._raw += delta
        if not self._skip_reasoning():
            return ""
        pending = self._raw[self._released :]
        return self._release(pending[: self._safe_cut(pending)])

    def flush(self) -> str:
        if self._thinking is None or self._thinking:
            self._raw = strip_reasoning(self._raw)
            self._released = 0
            self._thinking = False
        return self._release(self._raw[self._released :], final=True)

    def _release(self, part: str, final: bool = False) -> str:
        if not part and not final:
            return ""
        self._released += len(part)
        text = tidy_spaces(self._carry + neutralise_mentions(self.citations.apply(part)))
        # Trailing blanks wait for the next word: a citation dropped right after them must
        # not leave "word ." behind.
        body = text.rstrip()
        self._carry = "" if final else text[len(body) :]
        if not self._shown:
            body = body.lstrip()
            self._shown = bool(body)
        return body

    def _skip_reasoning(self) -> bool:
        """False while a leading <think> block may still be open."""
        if self._thinking is False:
            return True
        head = self._raw.lstrip()
        if self._thinking is None:
            if len(head) < len("<think>") and "<think>".startswith(head.lower()):
                return False
            self._thinking = head.lower().startswith("<think>")
            if not self._thinking:
                return True
        end = self._raw.lower().find("</think>")
        if end < 0:
            return False
        self._raw = self._raw[end + len("</think>") :].lstrip()
        self._released = 0
        self._thinking = False
        return True

    def _safe_cut(self, pending: str) -> int:
        cut = len(pending)
        bracket = max(pending.rfind("["), pending.rfind("［"))
        if bracket >= 0 and len(pending) - bracket <= 16:
            tail = pending[bracket:]
            if "]" not in tail and "］" not in tail:
                cut = bracket
        at = max(pending.rfind("@"), pending.rfind("<"))
        if at > 0 and pending[at] == "@" and pending[at - 1] == "<":
            at -= 1
        if at >= 0 and len(pending) - at <= self._HOLD_MAX:
            tail = pending[at:]
            if not any(c.isspace() or c == ">" for c in tail):
                cut = min(cut, at)
        return cut
