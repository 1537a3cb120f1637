"""The bot's own words around answers, in the asker's language (sources stay as written)."""

from __future__ import annotations

import re

_HANGUL = re.compile(r"[\uAC00-\uD7A3]")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "dont_know": "I don't know: the news I have stored does not answer that.",
        "maybe": "You may mean:",
        "empty": "Ask me something about national AI efforts, e.g. "
        '"What is South Korea doing to build its own AI model?"',
        "cut": "(Your question was long, so I read only its first {n} characters.)",
        "quoted_ko": "From Korean-language reports:",
        "quoted_en": "From English-language reports:",
    },
    "ko": {
        "dont_know": "모르겠습니다. 저장된 뉴스에는 이 질문에 답할 내용이 없습니다.",
        "maybe": "혹시 이 소식을 찾으셨나요?",
        "empty": '국가 AI 정책에 대해 물어보세요. 예: "한국 독자 AI 모델 사업 참여 기업은?"',
        "cut": "(질문이 길어 앞의 {n}자만 읽었습니다.)",
        "quoted_ko": "한국어 보도에 따르면:",
        "quoted_en": "영문 보도 내용입니다:",
    },
}


def question_language(question: str) -> str:
    """`ko` when the question is written in Hangul, else `en` (the bot's two reply languages)."""
    letters = [c for c in question if c.isalpha()]
    if not letters:
        return "en"
    hangul = sum(1 for c in letters if _HANGUL.match(c))
    return "ko" if hangul / len(letters) >= 0.3 else "en"


def text(key: str, lang: str) -> str:
    return TEXTS.get(lang, TEXTS["en"])[key]
