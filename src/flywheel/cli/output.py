"""What commands print: consoles, one-line notes, tables, JSON documents and JSON lines.

Rich is imported only inside functions, so that `flywheel --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

PIPE_WIDTH = 160
"""Rendering width when output is not a terminal: wide enough that tables do not wrap."""


def _console(file: TextIO) -> Console:
    from rich.console import Console

    width = None
    if not file.isatty():
        width = int(os.environ.get("COLUMNS") or 0) or PIPE_WIDTH
    return Console(file=file, width=width, highlight=False)


def out() -> Console:
    """Console on stdout (resolved per call, so redirected streams are honoured)."""
    return _console(sys.stdout)


def err() -> Console:
    return _console(sys.stderr)


def note(message: str) -> None:
    """A plain line on stderr: hints and notes that must not mix with data on stdout."""
    sys.stderr.write(message + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                title: str | None = None) -> None:
    """A table on stdout; cells are plain text (never markup), numbers right-aligned."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    materialised = [list(row) for row in rows]
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold")
    for position, name in enumerate(columns):
        numeric = bool(materialised) and all(
            isinstance(row[position], int | float) or row[position] is None
            for row in materialised)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in materialised:
        table.add_row(*(Text(cell_text(value)) for value in row))
    out().print(table)


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def shorten(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - unreachable


def jsonable(value: Any) -> Any:
    """`json.dumps` default for values read from Arrow tables."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def print_json(document: Any) -> None:
    """One JSON document on stdout (indented: people read it too)."""
    sys.stdout.write(json.dumps(document, default=jsonable, ensure_ascii=False, indent=2) + "\n")


def print_json_lines(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, default=jsonable, ensure_ascii=False) + "\n")


