"""Text for people: the one line of an error that a CLI or an HTTP answer shows."""

from __future__ import annotations

from pathlib import Path

from flywheel._core.errors import FlywheelError


def first_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of `error` (its type's name when it says nothing), cut at `limit`."""
    text = str(error)
    line = (text.splitlines() or [""])[0].strip()
    if not line and isinstance(error, BaseException):
        line = type(error).__name__
    return line[:limit]


def read_text(path: Path, error: type[FlywheelError]) -> str:
    """A project file's text; a file that is not UTF-8 (a binary, another encoding) is
    `error` with one line saying where, not a UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                    f"{exc.start})", hint="save it as UTF-8") from None
