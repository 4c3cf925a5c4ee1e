"""Text for people: the one line of an error that a CLI or an HTTP answer shows; and the
project files people write, read so that any bytes in them end in such a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel._core.errors import FlywheelError

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
MAX_YAML_DEPTH = 100
"""How deeply a project YAML file may nest mappings and lists (none needs a tenth)."""
MAX_YAML_VALUES = 1_000_000
"""How many values a project YAML file may hold once its aliases are expanded: a few
lines of anchors can otherwise stand for billions of values."""


def first_line(error: BaseException | str, limit: int | None = 300) -> str:
    """The first line of `error` that says something (its type's name when none does), cut
    at `limit` characters (None: not cut)."""
    line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    if not line and isinstance(error, BaseException):
        line = type(error).__name__
    return line if limit is None else line[:limit]


def value_problem(exc: ValueError | OverflowError) -> str:
    """What is wrong with a value a parser could not convert, without Python's advice."""
    text = first_line(exc, 160)
    if "integer string conversion" in text:
        return "a number is longer than 4,300 digits"
    return text


def decode_text(data: bytes, path: Path, error: type[FlywheelError],
                encoding: str = "utf-8") -> str:
    """`data`, the bytes of the file at `path`, as text; a leading UTF-8 byte-order mark
    (as some editors write) is dropped. Bytes that are not `encoding` are `error`, with
    one line saying where."""
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        utf16 = data.startswith(_UTF16_BOMS)
        raise error(f"{path} is not {'UTF-8' if encoding == 'utf-8' else encoding} text "
                    f"(byte 0x{data[exc.start]:02x} at offset {exc.start})",
                    hint="it looks like UTF-16: save it as UTF-8" if utf16
                    else "save it as UTF-8") from None
    except LookupError:  # a Python coding cookie that names no codec
        raise error(f"{path}: unknown text encoding '{encoding}'",
                    hint="save it as UTF-8 and drop the coding line") from None


def read_text(path: Path, error: type[FlywheelError]) -> str:
    """A project file's text; a file that is not UTF-8 (a binary, another encoding) is
    `error` with one line saying where, not a UnicodeDecodeError."""
    return decode_text(path.read_bytes(), path, error)


def read_yaml(path: Path, error: type[FlywheelError]) -> Any:
    """A project YAML file, parsed; a file that does not parse (bad syntax, a date such as
    2026-13-45 that YAML reads as a timestamp, nesting or aliases without end) is `error`
    with one line saying where."""
    import yaml

    text = read_text(path, error)
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # it checks every character here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path, error)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
            at = f" at line {text.count(chr(10), 0, exc.position) + 1}"
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise error(f"{path} is not valid YAML: {problem}{at}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise _too_deep(path, error) from None
    except (ValueError, OverflowError) as exc:  # YAML's own dates and numbers
        raise error(f"{path}: a value cannot be read: {value_problem(exc)}",
                    hint="dates are YYYY-MM-DD; quote a value meant as text") from None
    finally:
        if loader is not None:
            loader.dispose()


def _too_deep(path: Path, error: type[FlywheelError]) -> FlywheelError:
    return error(f"{path}: nested more than {MAX_YAML_DEPTH} levels deep (or an alias "
                 "holds itself)", hint="flatten it: no project file needs that many levels")


def _check_size(root: Any, path: Path, error: type[FlywheelError]) -> None:
    """Refuse a document nested too deeply or that its aliases blow up, without recursion
    and before anything is built from it."""
    import yaml

    stack: list[tuple[Any, int]] = [(root, 1)]
    values = 0
    while stack:
        node, depth = stack.pop()
        values += 1
        if values > MAX_YAML_VALUES:
            raise error(f"{path}: holds more than {MAX_YAML_VALUES:,} values once its "
                        "aliases (*name) are expanded",
                        hint="write the values out, or use fewer aliases")
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth > MAX_YAML_DEPTH:
            raise _too_deep(path, error)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        else:
            stack.extend((part, depth + 1) for pair in node.value for part in pair)
