"""Text for people: the one line of an error that a CLI or an HTTP answer shows."""

from __future__ import annotations


def first_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of `error` (its type's name when it says nothing), cut at `limit`."""
    text = str(error)
    line = (text.splitlines() or [""])[0].strip()
    if not line and isinstance(error, BaseException):
        line = type(error).__name__
    return line[:limit]
