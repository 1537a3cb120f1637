"""Offline rules that decide whether an item is about a national AI effort, and whose and what.

An item is relevant when it carries both an AI signal and a national-actor signal (a government,
agency, programme, law, national champion or sovereign compute). Every signal is weighted by where
it sits: the title counts most, then the first sentences; names that only appear as a yardstick
("to rival OpenAI", "큐웬3 대비") do not make their country an actor.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.core.gazetteer import (
    LATIN_LETTERS,
    NON_LATIN,
    WORD_START,
    WORD_START_BEFORE,
    Gazetteer,
    Hit,
    is_latin,
    lower_same_length,
    normalize_alias,
    trie_regex,
)
from bot.core.models import TOPICS, Classification

MAX_SUMMARY = 1500  # enough for the lede; long bodies only slow the rules down

# Weight of a signal by zone: title, first sentence, second sentence, the rest.
POSITION = (1.0, 0.8, 0.6, 0.45)
# Topics are told by the whole lede, so later sentences lose less.
TOPIC_POSITION = (1.0, 0.8, 0.7, 0.6)

AI_THRESHOLD = 0.8
NATIONAL_THRESHOLD = 1.0
COUNTRY_THRESHOLD = 0.6
TOPIC_THRESHOLD = 0.6
TOPIC_SHARE = 0.15  # a topic must also reach this share of the item's strongest topic

# --------------------------------------------------------------------------- lexicon
# Each line: category, weight, phrases. Phrases ending in * are stems. Latin phrases ignore case
# unless they are in CASED; Hangul/CJK phrases match inside words (particles attach to them).
_LEXICON: tuple[tuple[str, float, str], ...] = (
    # AI signal
    (
        "ai",
        1.0,
        "artificial intelligence|large language model*|language model*|foundation model*|"
        "frontier model*|reasoning model*|intelligence artificielle|künstliche Intelligenz|"
        "kunstliche Intelligenz|inteligencia artificial|intelligenza artificiale|generative AI|"
        "인공지능|거대언어모델|대규모 언어모델|언어모델|파운데이션 모델|에이아이|人工知能|人工智能|"
        "大規模言語モデル|基盤モデル|大模型|大语言模型|生成式",
    ),
    (
        "ai",
        0.8,
        "machine learning|deep learning|neural network*|chatbot*|생성형|초거대|딥러닝|"
        "머신러닝|챗봇|추론 모델|멀티모달",
    ),
    (
        "ai",
        0.6,
        "generative|multimodal|open-weight*|agentic|gigafactor*|supercomput*|슈퍼컴퓨터|算力",
    ),
    # national-actor signal
    (
        "gov",
        1.0,
        "government|governments|govt|ministry|ministries|state-backed|state-owned|"
        "state-run|state-funded|government-funded|government-backed|publicly funded|"
        "executive order|sovereign AI|national AI|public funding|public compute|gouvernement|"
        "ministère|Regierung|Ministerium|gobierno|정부|소버린|政府",
    ),
    (
        "gov",
        0.8,
        "minister|ministers|ministerial|parliament|lawmakers|policymakers|prime minister|"
        "state council|sovereign|sovereignty|national champion*|national strategy|export control*|"
        "export curbs|decree|ministre|souverain*|부처|장관|차관|국책|정예팀|国策",
    ),
    (
        "gov",
        0.6,
        "cabinet|legislat*|regulator*|public-private|subsid*|appropriations|taxpayer*|"
        "export rule*|national security|action plan|국회|법안|대통령|지원사업|공모|주권|国産|主権",
    ),
    (
        "gov",
        0.4,
        "national|federal|public sector|president|officials|authorities|domestic|"
        "homegrown|home-grown|indigenous|regulation*|sanction*|공공|정책|국가|독자|国家",
    ),
    (
        "gov",
        0.25,
        "programme|strategy|premier|chancellor|consortium|consortia|budget|law|laws|"
        "전략|예산|위원회|국산",
    ),
    # topics
    (
        "models",
        1.0,
        "foundation model*|language model*|frontier model*|reasoning model*|"
        "mixture-of-experts|open-weight*|파운데이션|언어모델|추론 모델|추론형|基盤モデル|大模型",
    ),
    (
        "models",
        0.6,
        "model|models|parameter*|fine-tun*|pretrain*|pre-train*|multimodal|"
        "vision-language|chatbot*|from scratch|open-source|open source|모델|매개변수|파라미터|"
        "파인튜닝|멀티모달|프롬 스크래치|가중치|モデル|模型",
    ),
    ("models", 0.3, "weights|checkpoint*|trained|tokens|release|released|launches|오픈소스"),
    (
        "compute",
        1.0,
        "computing power|compute capacity|data centre*|data center*|datacenter*|"
        "datacentre*|supercomput*|exascale|AI factory|AI factories|gigafactor*|superchip*|"
        "데이터센터|슈퍼컴퓨터|슈퍼컴|算力|数据中心|データセンター|スパコン|計算資源",
    ),
    ("compute", 0.8, "compute|gigawatt*|megawatt*|Blackwell|Grace Hopper|Grace Blackwell|컴퓨팅"),
    (
        "compute",
        0.6,
        "computing|cluster*|infrastructure|chips|chip|semiconductor*|memory chip*|"
        "DRAM|HBM|인프라|클러스터|반도체|칩",
    ),
    ("compute", 0.3, "cloud|servers|accelerator*|wafer*|클라우드"),
    (
        "policy",
        1.0,
        "executive order|code of practice|legislation|policy|policies|guideline*|"
        "decree|regulation*|regulatory|call for proposals|call for applications|export control*|"
        "export rule*|export limit*|export restriction*|정책|법안|기본법|"
        "시행령|가이드라인|政策|法案|規制",
    ),
    (
        "policy",
        0.7,
        "law|laws|rules|strategy|strategies|obligation*|compliance|comply|governance|"
        "action plan|regulat*|roadmap|규제|전략|제도|战略|戦略",
    ),
    (
        "policy",
        0.4,
        "framework|programme|plan|plans|committee|initiative|call|oversight|위원회|공모|계획",
    ),
    (
        "funding",
        1.0,
        "investment|investments|invest|invests|invested|investing|funding|valuation|"
        "budget|budgets|투자|예산|投資|投资|予算",
    ),
    (
        "funding",
        0.8,
        "fund|funds|funded|financing|raises|raised|investor|investors|pledge*|"
        "earmark*|subsid*|grants|incentive*|series A|series B|series C|series D|펀드|출자|자금|"
        "지원금",
    ),
    (
        "funding",
        0.5,
        "raise|stake|shareholder*|spend|spending|capital|venture|commitments|allocat*|유치",
    ),
    (
        "partnerships",
        1.0,
        "partnership*|memorandum|joint venture*|letter of intent|"
        "letters of intent|team up|teams up|teamed up|tie-up|협력|협약|업무협약|제휴|파트너십|"
        "손잡|맞손|合作|提携",
    ),
    (
        "partnerships",
        0.8,
        "partnering|partnered|agreement*|agree|agreed|agrees|deal|deals|"
        "alliance|collaborat*|cooperat*|co-operat*|together with|協力",
    ),
    (
        "partnerships",
        0.6,
        "partner|partners|signs|signed|work with|working with|co-develop*|"
        "strike|strikes|struck|joint",
    ),
    ("partnerships", 0.4, "consortium|consortia|supply|supplies|컨소시엄|공동|공급"),
    ("talent", 1.0, "talent|talents|brain drain|skilling|upskill*|scholarship*|인재|人材|人才"),
    (
        "talent",
        0.7,
        "students|graduate students|workforce|education|skills|recruit*|hiring|"
        "PhD|PhDs|fellowship*|인력|양성|교육|석박사|대학원생",
    ),
    ("talent", 0.3, "researchers|engineers|universities|university|채용"),
    (
        "data",
        1.0,
        "dataset*|data set*|corpus|corpora|training data|language data|open data|"
        "data sharing|학습 데이터|데이터셋|말뭉치",
    ),
    (
        "data",
        0.5,
        "data|copyright*|annotation*|labelling|labeling|data recipes|데이터|저작권|データ|数据",
    ),
    (
        "evaluation",
        1.0,
        "benchmark*|evaluation*|leaderboard*|eliminated|elimination|"
        "first-round|first round|intelligence index|평가|탈락|벤치마크|단계평가|評価|评测|"
        "ベンチマーク",
    ),
    (
        "evaluation",
        0.7,
        "evaluat*|scored|scores|shortlist*|finalist*|outperform*|topped|"
        "ranked|ranking*|assessment*|점수|심사|순위|통과",
    ),
    (
        "evaluation",
        0.4,
        "score|review|narrow*|round|rounds|stage|contest|picked|selected|tops|"
        "tests|points|performance|선정|성능|1차|2차|단계",
    ),
    (
        "security",
        1.0,
        "security|export control*|export curbs|export restriction*|"
        "national security|systemic risk*|espionage|cybersecurity|보안|안보|수출 통제|수출통제|"
        "安全保障|出口管制",
    ),
    (
        "security",
        0.8,
        "safety|sanction*|red team*|red-team*|cyber*|misuse|backdoor*|"
        "export rule*|안전|제재|사이버|安全",
    ),
    (
        "security",
        0.5,
        "risk|risks|threat*|ban|bans|banned|prohibited|surveillance|"
        "disinformation|deepfake*|zero-trust|privacy|위험",
    ),
)
# Latin phrases matched with their exact case (short acronyms that are ordinary words otherwise).
_CASED: tuple[tuple[str, float, str], ...] = (
    ("ai", 1.0, "AI|A.I.|AIs|GenAI|LLM|LLMs|AGI|KI|IA"),
    ("ai", 0.7, "GPU|GPUs|NPU|NPUs|HPC"),
    ("models", 1.0, "LLM|LLMs|MoE"),
    ("compute", 1.0, "GPU|GPUs|HPC"),
    ("compute", 0.8, "H100|H100s|H200|H200s|B200|B200s|GB200|GB300|DGX|NPU|NPUs|GW|MW"),
    ("partnerships", 1.0, "MoU|MOU|MoUs|MOUs|LOI"),
    ("evaluation", 0.7, "MMLU"),
)

# A money amount: a funding signal (weaker than the words, since prices and specs carry it too).
# Found from the currency token (cheap to scan for), then checked for a number just before it.
_MONEY = re.compile(
    r"[$€£¥₹₩]\s?\d"
    r"|(?<![a-z])(?:euros?|dollars?|won|yen|yuan|pounds|rupees?|riyals?|dirhams?|francs)(?![a-z])"
    r"|[억조만]\s?(?:원|달러|유로|엔|위안)"
    r"|[兆億万](?:円|元|ドル)"
)
_NUMBER_BEFORE = re.compile(r"\d[\d,.]*\s?(?:bn|billion|million|trillion|crore|lakh|\d)?\s?$")
_MONEY_CATS = (("funding", 0.4),)

# Words before a name that make it a yardstick or a foil rather than an actor ("to rival OpenAI",
# "alternative to US and Chinese models"): the name may follow within a few words.
_FOIL_WORDS = (
    "rival|rivals|rivaling|rivalling|rivaled|rivalled|reply to|answer to|response to|"
    "alternative to|alternatives to|compare to|compare with|compared to|compared with|"
    "comparing to|comparing with|comparing it to|comparable to|such as|like|than|versus|vs|"
    "reliance on|rely on|relying on|dependence on|dependency on|dependent on|depend on|"
    "depends on|depending on|depend less on|counter|countering|against|similar to|not from|"
    "outside|beyond|catch up with|behind|compete with|competing with|challenge to|beat|beats|"
    "beating|outperform|outperforms|outperformed|outperforming|ahead of|surpass|surpasses|"
    "surpassed|surpassing|trail|trails|trailing|on par with"
)
# Matched on lowered text (IGNORECASE would slow the scan several times).
_FOIL_BEFORE = re.compile(
    WORD_START_BEFORE + trie_regex(_FOIL_WORDS.split("|"), f"(?![{LATIN_LETTERS}])")
)
_NOT_FOIL = re.compile(r"(?:more|less|fewer|rather|other)\s+$")  # "more than 1,000 GPUs"
_FOIL_GAP_WORDS = 4
# Korean puts the comparison after the name: "큐웬3 대비", "GPT-4o보다".
_FOIL_AFTER = re.compile(r"대비|보다|처럼|에 맞서|에 대항|에 비해|와 비교|과 비교")
_FOIL_AFTER_GAP = re.compile(r"[\w.:-]{0,8}\s?")
# Words before a name that make it a venue rather than an actor ("at the AI Action Summit").
_VENUE_BEFORE = re.compile(r"\b(?:at|during|on the sidelines of)(?: the)?\s+$", re.IGNORECASE)
# Hardware after a foreign vendor's name: a product mention, not the vendor acting.
_HARDWARE_AFTER = re.compile(
    r"^(?:'s|’s)?(?:\s+[\w.+-]+){0,3}?\s+(?:GPUs?|chips?|superchips?|processors?|accelerators?|"
    r"servers?|systems|hardware|H100s?|H200s?|B200s?|GB[23]00s?|Blackwell|Hopper)\b"
)
# A country followed by its government ("Korea's science ministry", "중국 정부").
_GOV_AFTER = re.compile(
    r"^(?:'s|’s)?\s+(?:[\w&-]+\s+){0,3}?(?:government|ministry|minister|cabinet|state council|"
    r"parliament|president|prime minister|regulators?|authorities|officials|administration|"
    r"department|lawmakers|state-backed|state-owned|public|national)\b"
    r"|^\s?(?:정부|당국|부처|대통령|국회|국가)",
    re.IGNORECASE,
)
# "Germany's AI compute", "한국의 AI": the country itself framed as building AI capacity.
_NATIONAL_FRAME = re.compile(
    r"^(?:'s|’s)\s+(?:[\w-]+\s+){0,2}?(?:AI|artificial intelligence|compute|computing|"
    r"supercomput\w*|sovereign|national|data cent\w+)\b|^의?\s?(?:AI|인공지능|독자)",
)
_GOV_BEFORE = re.compile(
    r"\b(?:government|ministry|minister|president|prime minister|parliament) of (?:the )?$",
    re.IGNORECASE,
)
# Sentence ends, not abbreviations such as U.S. or Dr.
_SENTENCE_END = re.compile(
    r"(?<=[.!?。！？])(?<![A-Z]\.[A-Z]\.)(?<!\b[A-Z]\.)(?<!\b(?:Mr|Dr|St|vs|No|Co)\.)"
    r"(?<!\b(?:Inc|Ltd|Gov|Sen|Rep)\.)(?<!\bCorp\.)\s+|\n+"
)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_KANA = re.compile(r"[\u3040-\u30ff]")

# What naming an actor of each kind says about its country acting in the story.
_ACTING = {
    "agency": 1.0,
    "program": 1.0,
    "law": 1.0,
    "person": 1.0,
    "compute": 0.9,
    "company": 0.9,
    "lab": 0.9,
    "model": 0.9,
}
_ROLE_WEIGHT = {"name": 0.7, "demonym": 0.5, "place": 0.3}
_KIND_TOPIC = {"model": "models", "law": "policy", "compute": "compute"}


@dataclass(frozen=True, slots=True)
class _Lexicon:
    ci: re.Pattern[str]
    cs: re.Pattern[str]
    cjk: re.Pattern[str]
    exact: dict[str, tuple[tuple[str, float], ...]]
    cased: dict[str, tuple[tuple[str, float], ...]]
    stems: dict[str, tuple[tuple[str, float], ...]]


def _build_lexicon() -> _Lexicon:
    exact: dict[str, list[tuple[str, float]]] = {}
    cased: dict[str, list[tuple[str, float]]] = {}
    stems: dict[str, list[tuple[str, float]]] = {}
    ci_words: set[str] = set()
    cjk_words: set[str] = set()
    for cat, weight, phrases in _LEXICON:
        for phrase in phrases.split("|"):
            if phrase.endswith("*"):
                stems.setdefault(normalize_alias(phrase[:-1]), []).append((cat, weight))
            else:
                exact.setdefault(normalize_alias(phrase), []).append((cat, weight))
            (ci_words if is_latin(phrase) else cjk_words).add(phrase.lower())
    cs_words: set[str] = set()
    for cat, weight, phrases in _CASED:
        for phrase in phrases.split("|"):
            cased.setdefault(phrase, []).append((cat, weight))
            cs_words.add(phrase)
    end = f"(?![{LATIN_LETTERS}])"

    def freeze(d: dict[str, list[tuple[str, float]]]) -> dict[str, tuple[tuple[str, float], ...]]:
        """One weight per category and phrase: the highest listed."""
        out: dict[str, tuple[tuple[str, float], ...]] = {}
        for key, pairs in d.items():
            best: dict[str, float] = {}
            for cat, weight in pairs:
                best[cat] = max(weight, best.get(cat, 0.0))
            out[key] = tuple(best.items())
        return out

    return _Lexicon(
        ci=re.compile(WORD_START_BEFORE + trie_regex(ci_words, end)),
        cs=re.compile(trie_regex(cs_words, end, WORD_START)),
        cjk=re.compile(trie_regex(cjk_words)),
        exact=freeze(exact),
        cased=freeze(cased),
        stems=freeze(stems),
    )


_LEX = _build_lexicon()


def _lexicon_hits(text: str) -> list[tuple[int, int, tuple[tuple[str, float], ...]]]:
    out: list[tuple[int, int, tuple[tuple[str, float], ...]]] = []
    low = lower_same_length(text)
    for m in _LEX.ci.finditer(low):
        key = normalize_alias(m.group())
        cats = _LEX.exact.get(key)
        if cats is None:  # a stem such as regulat* matched "regulations": longest stem wins
            for cut in range(len(key), 1, -1):
                cats = _LEX.stems.get(key[:cut])
                if cats is not None:
                    break
        if cats:
            out.append((m.start(), m.end(), cats))
    for m in _LEX.cs.finditer(text):
        cats = _LEX.cased.get(m.group())
        if cats:
            out.append((m.start(), m.end(), cats))
    if NON_LATIN.search(text):
        for m in _LEX.cjk.finditer(low):
            cats = _LEX.exact.get(normalize_alias(m.group()))
            if cats:
                out.append((m.start(), m.end(), cats))
    for m in _MONEY.finditer(low):
        number_first = m.group()[-1].isdigit()
        if number_first or _NUMBER_BEFORE.search(low, max(0, m.start() - 24), m.start()):
            out.append((m.start(), m.end(), _MONEY_CATS))
    return out


class _Zones:
    """Maps a text offset to its zone (0 title, 1 first sentence, 2 second, 3 the rest)."""

    def __init__(self, title_len: int, text: str) -> None:
        self.title_len = title_len
        self.starts = [title_len + 1]
        for m in _SENTENCE_END.finditer(text, title_len + 1):
            if m.end() < len(text) and m.end() > self.starts[-1]:
                self.starts.append(m.end())
            if len(self.starts) >= 3:
                break

    def zone(self, pos: int) -> int:
        if pos < self.title_len:
            return 0
        return min(3, bisect.bisect_right(self.starts, pos))


@dataclass(slots=True)
class _Evidence:
    ai: float = 0.0
    national: float = 0.0
    topics: dict[str, float] = field(default_factory=dict)
    countries: dict[str, dict[str, float]] = field(default_factory=dict)
    entities: set[str] = field(default_factory=set)


class Classifier:
    """Pure and offline: the same input always gives the same answer, thousands per second."""

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer or Gazetteer.load()

    def classify(self, title: str, summary: str, lang: str | None = None) -> Classification:
        ev = self._evidence(title, summary, lang)
        relevant = ev.ai >= AI_THRESHOLD and ev.national >= NATIONAL_THRESHOLD
        top = max(ev.topics.values())
        floor = max(TOPIC_THRESHOLD, TOPIC_SHARE * top)
        topic_list = tuple(t for t in TOPICS if ev.topics[t] >= floor)
        if relevant and not topic_list and top > 0:
            topic_list = (max(TOPICS, key=lambda t: ev.topics[t]),)
        return Classification(
            relevant=relevant,
            score=_score(ev.ai, ev.national, relevant),
            countries=_pick_countries(ev.countries, relevant),
            topics=topic_list,
            entities=tuple(sorted(ev.entities)),
        )

    def explain(self, title: str, summary: str, lang: str | None = None) -> dict[str, object]:
        """The weighted evidence behind `classify`, for tuning and for answering "why?"."""
        ev = self._evidence(title, summary, lang)
        return {
            "ai": round(ev.ai, 3),
            "national": round(ev.national, 3),
            "countries": {
                code: {"score": round(_country_score(parts), 3), "parts": parts}
                for code, parts in sorted(ev.countries.items())
            },
            "topics": {t: round(v, 3) for t, v in ev.topics.items() if v},
            "entities": sorted(ev.entities),
        }

    def _evidence(self, title: str, summary: str, lang: str | None) -> _Evidence:
        title = (title or "").strip()
        summary = (summary or "").strip()[:MAX_SUMMARY]
        text = f"{title}\n{summary}"
        zones = _Zones(len(title), text)
        foils = _Foils(text)
        hits = self.gazetteer.scan(text)
        lex = _lexicon_hits(text)

        covered = bytearray(len(text) + 1)
        for h in hits:
            covered[h.start : h.end] = b"\x01" * (h.end - h.start)

        ev = _Evidence(topics=dict.fromkeys(TOPICS, 0.0))
        generic_gov: list[tuple[int, float]] = []
        for start, _end, cats in lex:
            pos = POSITION[zones.zone(start)]
            inside = covered[start] == 1
            for cat, weight in cats:
                if cat == "ai":
                    if not inside:
                        ev.ai += weight * pos
                elif cat == "gov":
                    if not inside:
                        ev.national += weight * pos
                        if weight >= 0.8:
                            generic_gov.append((start, weight * pos))
                elif not inside:
                    ev.topics[cat] += weight * TOPIC_POSITION[zones.zone(start)]

        seen_national: dict[str, float] = {}
        foil_countries: set[str] = set()
        credited: list[tuple[Hit, int, float]] = []
        for hit in hits:
            entry = hit.entry
            zone = zones.zone(hit.start)
            pos = POSITION[zone]
            foil = hit in foils
            if entry.kind != "country":
                ev.entities.add(entry.key)
                if entry.ai:
                    ev.ai += pos
                tpos = TOPIC_POSITION[zone]
                topic = _KIND_TOPIC.get(entry.kind)
                if topic:
                    ev.topics[topic] += tpos
                for topic in entry.topics:
                    if topic in ev.topics:
                        ev.topics[topic] += tpos
                if not foil and entry.weight:
                    best = seen_national.get(entry.key, 0.0)
                    gain = entry.weight * pos
                    if gain > best:
                        ev.national += gain - best
                        seen_national[entry.key] = gain
            if foil:
                if zone == 0 and (entry.country or entry.hq):
                    foil_countries.add(entry.country or entry.hq or "")
                continue
            credited.append((hit, zone, pos))
            if entry.kind == "country" and _NATIONAL_FRAME.match(text[hit.end : hit.end + 40]):
                ev.national += 0.6 * pos

        for hit, zone, pos in credited:
            if hit.entry.country:
                _credit_country(ev.countries, text, hit, pos)
            elif hit.entry.hq:
                _credit_vendor(ev.countries, text, hit, zone, pos)
        for code in foil_countries:
            parts = ev.countries.get(code)
            if parts:
                for key in parts:
                    parts[key] *= 0.5

        if generic_gov:
            _credit_generic_gov(ev.countries, text, title, lang, generic_gov)

        # Countries named as actors (not as foils) add a little to the national signal.
        for parts in ev.countries.values():
            ev.national += 0.2 * max(parts.values())
        return ev


class _Foils:
    """Where yardstick words sit in a text, found once so each name is checked by bisection."""

    def __init__(self, text: str) -> None:
        self.text = text
        low = lower_same_length(text)
        self.before = [
            m.end()
            for m in _FOIL_BEFORE.finditer(low)
            if m.group() != "than" or not _NOT_FOIL.search(low, max(0, m.start() - 8), m.start())
        ]
        self.after = [m.start() for m in _FOIL_AFTER.finditer(text)] if _HANGUL.search(text) else []

    def __contains__(self, hit: Hit) -> bool:
        text = self.text
        i = bisect.bisect_right(self.before, hit.start) - 1
        if i >= 0:
            gap = text[self.before[i] : hit.start]
            if (
                len(gap) <= 60
                and "\n" not in gap
                and ". " not in gap
                and len(gap.split()) <= _FOIL_GAP_WORDS
            ):
                return True
        j = bisect.bisect_left(self.after, hit.end)
        if j < len(self.after) and self.after[j] - hit.end <= 10:
            return _FOIL_AFTER_GAP.fullmatch(text, hit.end, self.after[j]) is not None
        return False


def _credit_country(
    countries: dict[str, dict[str, float]], text: str, hit: Hit, pos: float
) -> None:
    entry = hit.entry
    code = entry.country or entry.key
    before = text[max(0, hit.start - 30) : hit.start]
    if entry.kind == "country":
        weight = _ROLE_WEIGHT.get(hit.role, 0.3)
        if hit.role in ("name", "demonym") and (
            _GOV_AFTER.match(text[hit.end : hit.end + 45]) or _GOV_BEFORE.search(before)
        ):
            weight = 1.0
    elif _VENUE_BEFORE.search(before):
        weight = _ROLE_WEIGHT["place"]
    else:
        weight = _ACTING.get(entry.kind, 0.8)
    key = entry.key if entry.kind != "country" else f"{code}:{hit.role}"
    _add(countries, code, key, weight * pos)


def _credit_vendor(
    countries: dict[str, dict[str, float]], text: str, hit: Hit, zone: int, pos: float
) -> None:
    """Foreign big tech is not a national actor, but as a named party it brings its home in."""
    if zone == 0:
        value = 0.8
    elif zone == 1 and not _HARDWARE_AFTER.match(text[hit.end : hit.end + 40]):
        value = 0.65
    else:
        value = 0.2 * pos
    _add(countries, hit.entry.hq or "", hit.entry.key, value)


def _credit_generic_gov(
    countries: dict[str, dict[str, float]],
    text: str,
    title: str,
    lang: str | None,
    generic_gov: list[tuple[int, float]],
) -> None:
    """A bare 정부/政府 in Korean/Japanese copy means that country's own government."""
    home = None
    if lang:
        home = {"ko": "KR", "ja": "JP"}.get(lang.split("-")[0].lower())
    elif _KANA.search(title):
        home = "JP"
    elif _HANGUL.search(title):
        home = "KR"
    if home is None:
        return
    for start, gain in generic_gov:
        word = text[start : start + 2]
        if _HANGUL.search(word[:1]) or _KANA.search(word) or word == "政府":
            _add(countries, home, f"{home}:gov", gain)


def _add(countries: dict[str, dict[str, float]], code: str, key: str, value: float) -> None:
    if not code:
        return
    scores = countries.setdefault(code, {})
    if value > scores.get(key, 0.0):
        scores[key] = value


def _country_score(scores: dict[str, float]) -> float:
    values = sorted(scores.values(), reverse=True)
    return values[0] + 0.3 * sum(values[1:])


def _pick_countries(countries: dict[str, dict[str, float]], relevant: bool) -> tuple[str, ...]:
    scored = {code: _country_score(s) for code, s in countries.items()}
    tagged = [c for c, s in scored.items() if s >= COUNTRY_THRESHOLD]
    if not tagged and relevant and scored:
        best = max(scored, key=lambda c: scored[c])
        if scored[best] >= COUNTRY_THRESHOLD / 2:
            tagged = [best]
    return tuple(sorted(tagged))


def _score(ai: float, national: float, relevant: bool) -> float:
    """0..1, at least 0.5 exactly when relevant, growing with the surplus of evidence."""
    a = min(1.0, ai / AI_THRESHOLD)
    n = min(1.0, national / NATIONAL_THRESHOLD)
    if not relevant:
        return round(0.49 * a * n, 3)
    surplus = (ai / AI_THRESHOLD - 1) + (national / NATIONAL_THRESHOLD - 1)
    return round(0.5 + 0.5 * min(1.0, surplus / 6), 3)


def classify_many(
    classifier: Classifier, items: Iterable[tuple[str, str, str | None]]
) -> list[Classification]:
    """Convenience for batch jobs and benchmarks."""
    return [classifier.classify(t, s, lang) for t, s, lang in items]
