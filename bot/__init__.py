"""Sovereign Watch: a chat bot that follows national AI efforts."""

__version__ = "0.1.0"
