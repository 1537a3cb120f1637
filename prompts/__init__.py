"""LLM prompt templates, shipped as package data and read by bot.core.answer."""

from importlib import resources


def load(name: str) -> str:
    """Return the text of prompt template `name` (without the .txt suffix)."""
    return resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
