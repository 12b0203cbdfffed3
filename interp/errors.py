"""A small hierarchy of errors whose messages name the input, the place and the fix."""

from __future__ import annotations


class InterpError(Exception):
    """Base class of every error interp raises on purpose."""


class DataError(InterpError, ValueError):
    """Bad input data: a fact file, a corpus, a table."""


class ConfigError(InterpError, ValueError):
    """A configuration that cannot be run as given."""


class ModelError(InterpError, ValueError):
    """A model or tokenizer that the suite cannot use as given."""


def located(
    message: str, *, source: str | None = None, where: str | None = None, fix: str | None = None
) -> str:
    """Format a message as '<source>, <where>: <message>. Fix: <fix>'."""
    place = ", ".join(p for p in (source, where) if p)
    text = f"{place}: {message}" if place else message
    if fix:
        text = f"{text.rstrip('.')}. Fix: {fix}"
    return text
