"""Search terms for SQLite FTS5 that also work for Korean.

FTS5's unicode61 tokenizer keeps Korean particles attached (인공지능을 is one token), and a
trigram index cannot find two-syllable words such as 국가. So every Hangul word is also indexed
as its stem with common particles and endings stripped, plus the stem's syllable bigrams (which
bridge compounds written with or without a space: 단계평가 / 단계 평가). Questions go through
the same functions, so both sides agree. Pure Python and fast: no morphological model to load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD_RE = re.compile(r"[^\W_]+")
_HANGUL_RUN_RE = re.compile(r"[\uAC00-\uD7A3]+")
_HANGUL_RE = re.compile(r"^[\uAC00-\uD7A3]+$")
_STRONG_PARTICLES = frozenset("은는을를이가의도과와")

# Particles and verb endings, longest first so 에서는 is stripped before 는.
_KO_SUFFIXES = sorted(
    {
        "은",
        "는",
        "이",
        "가",
        "을",
        "를",
        "의",
        "에",
        "에서",
        "에게",
        "께",
        "께서",
        "으로",
        "로",
        "와",
        "과",
        "도",
        "만",
        "까지",
        "부터",
        "보다",
        "처럼",
        "이나",
        "나",
        "랑",
        "이랑",
        "하고",
        "에서는",
        "에는",
        "으로는",
        "로는",
        "과의",
        "와의",
        "에서도",
        "에도",
        "으로도",
        "로도",
        "에서의",
        "으로의",
        "로의",
        "에게는",
        "이다",
        "이며",
        "이고",
        "였다",
        "이었다",
        "이라는",
        "라는",
        "이란",
        "란",
        "들",
        "들이",
        "들은",
        "들을",
        "들의",
        "들과",
        "들도",
        "들에게",
        "한다",
        "했다",
        "하는",
        "하며",
        "하여",
        "해",
        "했으며",
        "했고",
        "하기",
        "하겠다",
        "하였다",
        "합니다",
        "했습니다",
        "된다",
        "됐다",
        "되는",
        "되어",
        "되며",
        "됩니다",
        "된",
        "될",
        "한",
        "할",
        "함",
        "했던",
        "해야",
        "하면",
        "하지",
        "시킨다",
        "시켰다",
        "받았다",
        "받는",
        "인가요",
        "인가",
        "인지",
        "이에요",
        "예요",
        "입니까",
        "나요",
        "까요",
        "었나요",
        "했나요",
        "됐나요",
        "인데",
        "에선",
        "엔",
    },
    key=len,
    reverse=True,
)

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "by",
        "with",
        "as",
        "at",
        "from",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "done",
        "has",
        "have",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "about",
        "into",
        "than",
        "then",
        "there",
        "their",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "we",
        "our",
        "you",
        "your",
        "i",
        "me",
        "my",
        "not",
        "no",
        "yes",
        "so",
        "if",
        "also",
        "any",
        "all",
        "some",
        "more",
        "most",
        "much",
        "many",
        "one",
        "two",
        "per",
        "via",
        "over",
        "under",
        "after",
        "before",
        "up",
        "down",
        "out",
        "new",
        "says",
        "said",
        "tell",
        "please",
        "give",
        "list",
        "explain",
        "latest",
        "recent",
        "news",
        "near",
        "own",
        "무엇",
        "무엇인가요",
        "무엇인가",
        "어디",
        "어디인가요",
        "누구",
        "누구인가요",
        "어떤",
        "어떻게",
        "언제",
        "왜",
        "몇",
        "얼마",
        "얼마나",
        "무슨",
        "그",
        "이",
        "저",
        "및",
        "또는",
        "등",
        "관련",
        "대한",
        "대해",
        "대해서",
        "있는",
        "있나요",
        "있습니까",
        "알려줘",
        "알려주세요",
        "최근",
        "최신",
        "뉴스",
        "소식",
    ]
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens, roughly as FTS5's unicode61 tokenizer sees them."""
    return [w.lower() for w in _WORD_RE.findall(text)]


def hangul_words(text: str) -> list[str]:
    """Hangul runs of the text (the Korean part of a token such as 1차 or AI모델 too)."""
    return _HANGUL_RUN_RE.findall(text)


_KO_SUFFIX_SET = frozenset(_KO_SUFFIXES)
_KO_SUFFIX_MAX = max(map(len, _KO_SUFFIXES))


def korean_stems(word: str) -> list[str]:
    """Candidate stems of a Hangul word: every strip of a known suffix that leaves a stem."""
    stems: list[str] = []
    for size in range(min(_KO_SUFFIX_MAX, len(word) - 1), 0, -1):
        if word[-size:] in _KO_SUFFIX_SET:
            stems.append(word[:-size])
    return stems


def bigrams(word: str) -> list[str]:
    return [word[i : i + 2] for i in range(len(word) - 1)]


def index_terms(text: str, extra: Iterable[str] = ()) -> str:
    """The extra `terms` column for one article: Korean stems and bigrams, entity tokens."""
    out: list[str] = []
    seen: set[str] = set()

    def add(term: str) -> None:
        if term not in seen:
            seen.add(term)
            out.append(term)

    for word in hangul_words(text):
        candidates = [word, *korean_stems(word)]
        for stem in candidates:
            add(stem)
            if len(stem) >= 3:
                for gram in bigrams(stem):
                    add(gram)
    for token in extra:
        add(token)
    return " ".join(out)


def entity_token(key: str) -> str:
    """A gazetteer key as one FTS token (so a Korean article is found by 'Naver' and back)."""
    return "ent" + re.sub(r"[^0-9a-z]+", "", key.lower())


def query_groups(text: str) -> list[list[str]]:
    """Each content word of a question with its alternatives (stems, bigrams), stopwords out."""
    groups: list[list[str]] = []
    for word in words(text):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        alts = [word]
        korean = hangul_words(word)
        if korean and korean[0] != word and len(korean[0]) >= 2:
            alts.append(korean[0])
        if _HANGUL_RE.match(word):
            stems = [
                s
                for s in korean_stems(word)
                if s not in STOPWORDS and (len(s) >= 2 or word[len(s) :] in _STRONG_PARTICLES)
            ]
            alts.extend(stems)
            base = stems[0] if stems else word
            if len(base) >= 4:
                alts.extend(bigrams(base))
            if all(a in STOPWORDS for a in alts):
                continue
        if alts not in groups:
            groups.append(alts)
    return groups


def fts_quote(term: str) -> str:
    """A term as an FTS5 string literal, so user text can never be read as query syntax."""
    return '"' + term.replace('"', '""') + '"'


def fts_term(term: str) -> str:
    """One quoted term; a trailing `*` (from our own lexicon, never from user text) is a prefix."""
    if term.endswith("*") and len(term) > 1 and "*" not in term[:-1]:
        return fts_quote(term[:-1]) + "*"
    return fts_quote(term)


def fts_or_query(terms: Iterable[str]) -> str:
    """OR of quoted terms; empty string when there is nothing to search for."""
    unique = list(dict.fromkeys(t.strip() for t in terms if t and t.strip().strip("*")))
    return " OR ".join(fts_term(t) for t in unique)
