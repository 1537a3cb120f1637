"""A question taken apart: what it names, what it constrains, and what kind of answer it wants.

Groups are the units of evidence: one per named actor, country, place, year, month, round or
stage, figure, and content word (with its stems, translations and concept). Anchored groups are
constraints: an article that lacks one answers a different question (the right project but the
wrong year or round), so it cannot ground an answer on its own. The wanted answer types
(a figure, a date, a place, a name, a reason) steer which sentences are quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.answer_text import question_language
from bot.core.features import (
    MONTHS,
    Analyzer,
    TextFeatures,
    find_dates,
    find_numbers,
    find_ordinals,
)
from bot.core.gazetteer import Entry, normalize_alias
from bot.core.lexicon import stem_en, stem_phrase
from bot.core.textindex import STOPWORDS, bigrams, entity_token, korean_stems

_TOKEN = re.compile(r"[^\W_]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_STRONG_PARTICLES = frozenset("은는을를이가의도과와")

# Words too common in this domain to tell articles apart: they count, but little.
GENERIC = frozenset(
    {"ai", "llm", "llms", "model", "models", "project", "program", "programme", "national",
     "government", "company", "companies", "news", "coverage", "covered", "report", "reported",
     "인공지능", "모델", "프로젝트", "사업", "정부", "국가", "기업", "보도", "뉴스"}
)  # fmt: skip
# Question words that are not content (what the question asks, not what it is about).
QUESTION_WORDS = frozenset(
    {"compare", "comparison", "both", "still", "itself", "specifically", "respectively",
     "combined", "each", "much", "many", "what", "which", "kind", "type", "does", "did",
     "anything", "something", "actually", "newest", "most", "recently", "covered", "coverage",
     "current", "currently", "known", "according", "reports", "reported", "stories", "story",
     "happened", "happen", "happening", "going", "doing", "exactly", "around", "roughly",
     "about", "update", "updates", "status", "know", "tell", "me",
     "요즘", "근황", "현재", "되고", "되는", "되나요", "하고", "하는", "있는", "있고", "어떤가요",
     "어때요", "상황", "진행", "알려줘", "알려주세요", "궁금해요", "궁금합니다",
     "각각", "어느", "무엇을", "무엇이", "뭐", "뭔가요", "어디인가요", "얼마인가요", "몇",
     "무엇인가요", "누구인가요", "언제인가요", "있나요", "했나요", "됐나요", "인가요"}
)  # fmt: skip

_RECENT = re.compile(
    r"(?i)\b(latest|most recent|recent|recently|newest|this week|today|now|current|so far)\b"
    r"|최근|최신|요즘|근황|현재|가장 최근"
)
_WANTS = {
    "number": re.compile(
        r"(?i)\bhow (many|much|big|large|long|far|fast)\b|\b(what|which|how|compare)\b[^.?;]{0,80}"
        r"\b(sizes?|share|percentage|amount|budget|scores?|points|valuation|cost|price|stake|"
        r"proportion|count|parameters|split|divided|penetration|targets?)\b|"
        r"몇|얼마|규모|금액|점수|예산|비율|[가-힣]{2}[률율]|평균|배점|비중"
    ),
    "money": re.compile(
        r"(?i)\b(cost|costs|budget|invest\w*|fund\w*|raised?|valuation|valued|price|spend\w*|"
        r"euros?|dollars?|pounds?|yen|won)\b|금액|예산|투자|비용|가치|조달|유치"
    ),
    "date": re.compile(
        r"(?i)\bwhen\b|\bwhat (date|day|year|month|time)\b|\bfrom what\b|\bby when\b|언제|며칠|"
        r"몇 월|몇 년|시기|날짜|일정|언제부터"
    ),
    "place": re.compile(
        r"(?i)\bwhere\b|\bwhich (city|country|region|site|location|state)\b|\bin what (city|"
        r"country|region)\b|어디에|어디서|어디로|어느 (도시|지역|나라)|(도시|지역|위치|장소)는"
    ),
    "name": re.compile(
        r"(?i)\b(which|who|whom|name|named|called)\b|\bwhat (company|companies|firm|team|model|"
        r"startup|department|agency)\b|어디|누구|어느|어떤 (기업|회사|팀|모델|기관|곳)|기관들|곳은|"
        r"기업은|팀은|회사는|이름|무엇"
    ),
    "reason": re.compile(r"(?i)\bwhy\b|\bwhat reason\b|\bhow did .{0,60}\bexplain\b|왜|이유|설명"),
}


@dataclass
class QueryGroup:
    """One unit of evidence the question asks for, with every form that satisfies it."""

    terms: list[str]  # search forms for the full-text index
    anchor: bool = False
    weight: float = 1.0  # prior times rarity among the retrieved pool, set by Retriever.search
    keys: frozenset[str] = frozenset()
    kind: str = "word"  # word | entity | country | place | year | month | ordinal | number
    label: str = ""
    prior: float = 1.0
    grams: tuple[str, ...] = ()  # Hangul pairs of a long Korean word (partial credit)
    lang: str = ""  # "en"/"ko": the word has no translation; "" matches in either language
    aliases: tuple[str, ...] = ()  # squeezed names of an entity (see TextFeatures.flat)


@dataclass
class Question:
    text: str
    lang: str
    groups: list[QueryGroup]
    wants: frozenset[str]
    recent: bool
    own: TextFeatures
    entity_keys: frozenset[str] = field(default_factory=frozenset)


def wants_recent(question: str) -> bool:
    return bool(_RECENT.search(question))


def answer_types(question: str) -> frozenset[str]:
    found = {name for name, rx in _WANTS.items() if rx.search(question)}
    if "number" not in found:
        found.discard("money")
    return frozenset(found)


class QuestionParser:
    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.gazetteer = analyzer.gazetteer
        self.lexicon = analyzer.lexicon
        self._first_words: dict[str, list[Entry]] | None = None

    def parse(self, question: str) -> Question:
        groups: list[QueryGroup] = []
        taken: list[tuple[int, int]] = []

        def add(group: QueryGroup) -> None:
            for old in groups:
                if old.keys and old.keys == group.keys:
                    old.terms.extend(t for t in group.terms if t not in old.terms)
                    old.anchor = old.anchor or group.anchor
                    return
            groups.append(group)

        def free(start: int, end: int) -> bool:
            return all(end <= s or start >= e for s, e in taken)

        entity_keys: set[str] = set()
        for hit in self.gazetteer.scan(question):
            entry = hit.entry
            surface = question[hit.start : hit.end]
            taken.append((hit.start, hit.end))
            if hit.role == "place":
                key = self.analyzer.place_key(surface)
                terms = [
                    surface,
                    *self._concept_terms({key[2:]} if key.startswith("c:") else set()),
                ]
                add(
                    QueryGroup(
                        terms, True, keys=frozenset({key}), kind="place", label=surface, prior=1.2
                    )
                )
            elif entry.kind == "country":
                names = [n for n in self.gazetteer.expand_query(surface) if " " not in n]
                # The name itself, in either script, as well as the country tag: an article
                # may mention a country it is not tagged with.
                keys = {"e:" + entry.key}
                for name in [surface, *names]:
                    if " " in name.strip() or len(name) <= 2:
                        continue
                    if _HANGUL.search(name):
                        keys.add("k:" + name)
                    elif name.isascii():
                        keys.add("w:" + stem_en(name.lower()))
                # "English" or "Korean" may name a language: a demonym is no constraint.
                demonym = hit.role == "demonym"
                add(
                    QueryGroup(
                        [surface.lower(), *names[:8]],
                        not demonym,
                        keys=frozenset(keys),
                        kind="country",
                        label=surface,
                        prior=0.5,
                    )
                )
            else:
                entity_keys.add(entry.key)
                add(self._entity_group(entry, surface))
        typed = [*find_ordinals(question), *find_dates(question), *find_numbers(question)]
        for found in typed:
            if not free(found.start, found.end):
                continue
            taken.append((found.start, found.end))
            typed_keys = found.keys
            if found.kind == "month" and any(k.startswith("ym:") for k in typed_keys):
                typed_keys = frozenset(k for k in typed_keys if k.startswith("ym:"))
            elif found.kind == "year-in-date":
                continue
            terms = self._typed_terms(found.kind, found.keys, found.label)
            add(
                QueryGroup(
                    terms, True, keys=typed_keys, kind=found.kind, label=found.label, prior=1.2
                )
            )
        tokens = [m for m in _TOKEN.finditer(question) if free(m.start(), m.end())]
        self._phrases(question, tokens, taken, add)
        for m in tokens:
            if not free(m.start(), m.end()):
                continue
            named = self._named_by_first_word(m.group(), question, m.start())
            if named is not None:
                entity_keys.add(named.key)
                add(self._entity_group(named, m.group()))
                continue
            group = self._word_group(m.group(), question, m.start())
            if group is not None:
                add(group)
        self._mark_focus(question, groups)
        return Question(
            text=question,
            lang=question_language(question),
            groups=groups,
            wants=answer_types(question),
            recent=wants_recent(question),
            own=self.analyzer.features(question),
            entity_keys=frozenset(entity_keys),
        )

    # --- pieces -------------------------------------------------------------------------------
    def _entity_group(self, entry: Entry, surface: str) -> QueryGroup:
        names = [entity_token(entry.key), surface]
        names += [n for n in self.gazetteer.expand_query(surface) if len(n) > 1][:8]
        names += [n for n in entry.aliases() if n not in names][:4]
        # Spellings the name matcher may miss (독자 AI for 독자AI): checked as substrings of
        # the squeezed text, so only distinctive ones.
        flat = tuple(
            a
            for a in {normalize_alias(n) for n in entry.aliases()}
            if _HANGUL.search(a) or len(a) >= 6
        )
        return QueryGroup(
            names,
            True,
            keys=frozenset({"e:" + entry.key}),
            kind="entity",
            label=surface,
            prior=1.5,
            aliases=flat,
        )

    def _named_by_first_word(self, token: str, question: str, pos: int) -> Entry | None:
        """An actor called by the first word of its name ("Motif" for Motif Technologies),
        when that word is a capitalised name and belongs to one actor only."""
        if len(token) < 4 or not token.isascii() or not _proper(token, question, pos):
            return None
        if self.lexicon.english(stem_en(token)) or token.lower() in GENERIC:
            return None  # a common word (National, Sovereign) names no one in particular
        if self._first_words is None:
            index: dict[str, list[Entry]] = {}
            for entry in self.gazetteer.entries():
                for alias in entry.aliases():
                    first = alias.split()[0].lower() if alias.split() else ""
                    if first.isascii() and len(first) >= 4 and entry not in index.get(first, []):
                        index.setdefault(first, []).append(entry)
            self._first_words = index
        found = self._first_words.get(token.lower(), [])
        return found[0] if len(found) == 1 else None

    def _mark_focus(self, question: str, groups: list[QueryGroup]) -> None:
        """The thing asked about must be in the evidence: "how many GPUs" needs GPUs, "the
        parameter count of" needs parameters, "which companies won" needs a win. A focus verb
        we have no synonyms for only weighs more, since the source may say it otherwise."""
        nouns, verbs = focus_words(question)
        for group in groups:
            label = group.label.lower()
            parts = set(label.replace("-", " ").split())
            if group.kind != "word" or not (parts & (nouns | verbs)):
                continue
            if any(k.startswith("c:") for k in group.keys):
                group.anchor = True
                group.prior = max(group.prior, 1.3)
            else:
                group.prior *= 2.0

    def _concept_terms(
        self, cids: set[str], limit: int = 10, other_first: bool = True
    ) -> list[str]:
        """Surface forms of the concepts, the other language's first (they find what the
        question's own words cannot)."""
        ko: list[str] = []
        en: list[str] = []
        for cid in sorted(cids):
            for form in self.lexicon.surfaces(cid):
                (ko if _HANGUL.search(form) else en).append(form)
        out = [*ko, *en] if other_first else [*en, *ko]
        return list(dict.fromkeys(out))[:limit]

    def _typed_terms(self, kind: str, keys: frozenset[str], label: str) -> list[str]:
        if kind == "number":
            digits = re.sub(r"[^\d.]", "", label.split()[0]) or label
            return [digits.rstrip(".")]
        if kind == "year":
            return [label]
        if kind == "month":
            n = int(next(k for k in keys if k.startswith("m:"))[2:])
            names = [w for w, v in MONTHS.items() if v == n and len(w) > 3]
            years = [k[3:].split("-")[0] for k in keys if k.startswith("ym:")]
            return [*names, f"{n}월", *years]
        n = int(next(iter(keys))[2:])
        words = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
        out = [f"{n}차", f"{n}단계"]
        if n in words:
            out.append(words[n])
        return out

    def _phrases(
        self,
        question: str,
        tokens: list[re.Match[str]],
        taken: list[tuple[int, int]],
        add: Callable[[QueryGroup], None],
    ) -> None:
        """Multi-word lexicon forms (letter of intent, data centre) as one group each."""
        stems = [stem_en(m.group().lower()) for m in tokens]
        joined = " ".join(stems)
        for cid in sorted(self.lexicon.english_phrases(joined)):
            phrase = stem_phrase(next(f for f in self.lexicon.concepts[cid].en if " " in f))
            parts = phrase.split()
            for i in range(len(stems) - len(parts) + 1):
                if stems[i : i + len(parts)] == parts:
                    start, end = tokens[i].start(), tokens[i + len(parts) - 1].end()
                    taken.append((start, end))
                    group = QueryGroup(
                        [question[start:end].lower(), *self._concept_terms({cid})],
                        keys=frozenset({"c:" + cid}),
                        label=question[start:end],
                    )
                    add(group)
                    break

    def _word_group(self, token: str, question: str, pos: int) -> QueryGroup | None:
        word = token.lower()
        if word in STOPWORDS or word in QUESTION_WORDS or (len(word) < 2 and not word.isdigit()):
            return None
        if KO_QUESTION.match(word):
            return None
        if word.isdigit():
            return None  # figures are typed groups already
        keys, grams = self.analyzer.word_keys(word)
        hangul = bool(_HANGUL.search(word))
        latin = re.sub(r"[\uac00-\ud7a3]+", "", word)
        terms: list[str] = []
        if hangul:
            korean = "".join(re.findall(r"[\uac00-\ud7a3]+", word))
            stems = [
                s
                for s in korean_stems(korean)
                if s not in STOPWORDS and (len(s) >= 2 or korean[len(s) :] in _STRONG_PARTICLES)
            ]
            alts = [korean, *stems]
            if all(a in STOPWORDS or a in QUESTION_WORDS for a in alts) and not latin:
                return None
            base = stems[0] if stems else korean
            terms.extend(alts)
            if latin and not latin.isdigit() and latin not in STOPWORDS:
                terms.append(latin)
            grams = set(bigrams(base)) if len(base) >= 3 else set()
        else:
            terms.append(word)
        concepts = {k[2:] for k in keys if k.startswith("c:")}
        # Translations before syllable pairs: the search keeps only a group's first few forms.
        terms.extend(self._concept_terms(concepts, other_first=not hangul))
        if hangul and len(base) >= 4:
            terms.extend(bigrams(base))
        generic = word in GENERIC or any(k[2:] in GENERIC for k in keys if k.startswith("k:"))
        anchor = (not hangul and _proper(token, question, pos)) or (
            hangul and bool(latin) and latin.isalpha() and latin.upper() == latin and len(latin) > 1
        )
        lang = "" if concepts or anchor else ("ko" if hangul else "en")
        if not hangul and word.isascii() and word.upper() == token and len(word) <= 5:
            lang = ""  # acronyms (GPU, LLM) are written in Latin in Korean text too
        prior = 0.35 if generic else (1.3 if anchor else 1.0)
        return QueryGroup(
            terms=list(dict.fromkeys(terms)),
            anchor=anchor and not generic,
            keys=frozenset(keys),
            kind="word",
            label=token,
            prior=prior,
            grams=tuple(sorted(grams)),
            lang=lang,
        )


def _proper(token: str, question: str, pos: int) -> bool:
    """A capitalised word that does not start the sentence is a name (or a figure-like code)."""
    if any(ch.isdigit() for ch in token):
        return True
    if not token[:1].isupper():
        return False
    before = question[:pos].rstrip(" \t\n\"'“‘([{*^-")
    if not before or before.endswith((".", "?", "!", ":")):
        return False
    return token.lower() not in GENERIC


_AUX = frozenset(
    {"was", "were", "is", "are", "has", "have", "had", "did", "does", "do", "will", "would",
     "can", "could", "go", "goes", "went", "to", "in", "under", "for", "at", "on", "from"}
)  # fmt: skip
_ADVERBS = frozenset(
    {"first", "also", "then", "still", "officially", "formally", "finally", "eventually",
     "recently", "both", "initially", "later", "jointly"}
)  # fmt: skip
_PAST = frozenset(
    {"won", "led", "chose", "picked", "got", "took", "made", "built", "lost", "beat", "sold",
     "bought", "paid", "gave", "began", "became", "left", "held", "ran"}
)  # fmt: skip
_FOCUS_OF = re.compile(r"(?i)\bwhat (?:is|was|are|were) the ((?:[\w-]+ ){0,2}?[\w-]+) of\b")
_HOW_MANY = re.compile(r"(?i)\bhow many\b")
_MEASURE_ADJECTIVES = frozenset(
    {"total", "active", "new", "more", "other", "different", "additional", "separate"}
)
_HOW_MUCH_DID = re.compile(r"(?i)\bhow much (?:did|does|do|will|would|was|is|has|had)\b")
_MONEY_VERBS = frozenset(
    {"cost", "costs", "spend", "spent", "raise", "raised", "invest", "invested", "pay", "paid",
     "fund", "funded", "earn", "earned", "charge", "lose", "lost", "receive", "received",
     "get", "got"}
)  # fmt: skip
_YES_NO = re.compile(r"(?i)^\W*(was|were|is|are|has|have|had)\b")
_KO_YES_NO = re.compile(r"(했|됐|었|았|였|되었|하였)(나요|습니까|니|어요|나)$")
_WHICH = re.compile(r"(?i)^\W*(which|who)\b")
_DETERMINERS = frozenset({"the", "a", "an", "its", "it", "their", "this", "that", "them", "his"})
_KO_NAME = re.compile(r"(이름|명칭)")
# Korean question words with any ending: 어디에, 언제까지, 누구인가요, 무엇인지, 얼마나, 몇째.
KO_QUESTION = re.compile(r"^(어디|언제|누구|무엇|무슨|얼마|몇|어떤|어떻게|어느|왜)")
_KO_COUNT_SKIP = ("총", "약", "각각", "모두", "대략")


def focus_words(question: str) -> tuple[set[str], set[str]]:
    """What the question turns on: head nouns ("how many X", "what is the X of", Korean
    "X는 얼마/몇", "이름") and verbs ("which X <did>", "how much did X <cost>", "Was X
    <eliminated>?", "탈락했나요?")."""
    nouns: set[str] = set()
    verbs: set[str] = set()
    for m in _FOCUS_OF.finditer(question):
        nouns |= {w.lower() for w in re.split(r"[ -]", m.group(1)) if w.lower() not in STOPWORDS}
    for m in _HOW_MANY.finditer(question):
        # The counted thing: the noun phrase after "how many", up to its verb or preposition
        # ("how many total and active parameters does" -> parameters).
        for word in _TOKEN.findall(question[m.end() :])[:6]:
            low = word.lower()
            if low in ("and", "or") or low in _MEASURE_ADJECTIVES:
                continue
            if low in _AUX or low in STOPWORDS or (low.endswith("ed") and len(low) > 4):
                break
            nouns.add(low)
    for m in _HOW_MUCH_DID.finditer(question):
        # "how much did X cost / raise / invest": the money verb is what is asked.
        for word in _TOKEN.findall(question[m.end() :])[:6]:
            if word.lower() in _MONEY_VERBS:
                verbs.add(word.lower())
                break
    which = _WHICH.match(question)
    if which:
        # Only the opening "which X <did>": the event the whole question turns on.
        words = [w.lower() for w in _TOKEN.findall(question[which.end() :])][:7]
        for i, word in enumerate(words[:5]):
            if word in _AUX or word in _ADVERBS or word in STOPWORDS:
                continue
            following = words[i + 1] if i + 1 < len(words) else ""
            present = word.endswith("s") and following in _DETERMINERS
            if word in _PAST or (word.endswith("ed") and len(word) > 4) or present:
                verbs.add(word)
                break
    tokens = _TOKEN.findall(question)
    if _YES_NO.match(question):
        # "Was X eliminated ...?": the participle is what the answer must confirm.
        for word in tokens[1:9]:
            low = word.lower()
            if low in _PAST or (len(low) > 4 and low.endswith(("ed", "en"))):
                verbs.add(low)
                break
    if tokens and _KO_YES_NO.search(tokens[-1]) and not KO_QUESTION.match(tokens[-1]):
        verbs.add(tokens[-1].lower())  # 탈락했나요?: the predicate is what is asked
    for i, word in enumerate(tokens):
        if _KO_NAME.match(word):
            nouns.add(word.lower())
        if word.startswith(("얼마", "몇")):
            # Korean puts the measured thing just before 얼마/몇: 비용은 얼마, GPU는 총 몇 장.
            for prev in reversed(tokens[max(0, i - 2) : i]):
                if prev not in _KO_COUNT_SKIP:
                    nouns.add(prev.lower())
                    break
    return nouns, verbs
