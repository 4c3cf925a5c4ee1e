"""Text for people: the one line of an error that a CLI or an HTTP answer shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def read_yaml(path: Path, error: type[FlywheelError]) -> Any:
    """A project YAML file, parsed; a file that does not parse (bad syntax, a date such as
    2026-13-45 that YAML reads as a timestamp) is `error` with one line saying where."""
    import yaml

    text = read_text(path, error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise error(f"{path} is not valid YAML: {problem}{at}") from None
    except (ValueError, OverflowError) as exc:  # YAML's own dates and numbers
        raise error(f"{path}: a value cannot be read: {first_line(exc)}",
                    hint="dates are YYYY-MM-DD; quote a value meant as text") from None
