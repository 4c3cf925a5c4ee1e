"""What every command shares: consoles, the project session, one-line errors, tables, progress.

Heavy modules (the project, pyarrow, pydantic) are imported only inside functions, so that
`flywheel --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from rich.console import Console

    from flywheel.project import Project

DEBUG_ENV = "FLYWHEEL_DEBUG"
"""Print tracebacks of unexpected errors. Read here because only the CLI hides tracebacks."""
PIPE_WIDTH = 160
"""Rendering width when output is not a terminal: wide enough that tables do not wrap."""

Advance = Callable[[int], None]
"""Report progress as an absolute position (bytes or rows done so far)."""


def epilog(*examples: str, note: str = "") -> str:
    """Help text after the options: examples, one per line, then an optional paragraph.

    Rich markup help joins the lines of a paragraph only at blank lines, so each example is
    its own paragraph and `note` must not be hard-wrapped."""
    title = "Examples" if len(examples) > 1 else "Example"
    parts = [f"[bold]{title}[/bold]", *(f"  {example}" for example in examples)]
    return "\n\n".join([*parts, note] if note else parts)


@dataclass(frozen=True, slots=True)
class CliState:
    """Global options, kept on the root context for every command."""

    project: Path | None = None


def state(ctx: typer.Context) -> CliState:
    found = ctx.find_root().obj
    return found if isinstance(found, CliState) else CliState()


@contextmanager
def open_project(ctx: typer.Context) -> Iterator[Project]:
    """The project of `--project`, FLYWHEEL_PROJECT or the working folder; always closed."""
    from flywheel.project import Project

    project = Project.open(state(ctx).project)
    try:
        yield project
    finally:
        project.close()


# Output -------------------------------------------------------------------------------
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


@contextmanager
def progress(description: str, total: int | None, unit: str) -> Iterator[Advance]:
    """A progress bar on stderr when it is a terminal (and FLYWHEEL_NO_PROGRESS is unset).

    `unit` is "bytes" or "rows"; the yielded function takes the position reached so far.
    """
    from flywheel._core.settings import Settings

    if not sys.stderr.isatty() or Settings.from_env().no_progress:
        yield lambda position: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    counter = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    with Progress(TextColumn("{task.description}"), BarColumn(), counter, TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda position: bar.update(task, completed=position)


class LiveLines:
    """One line per item of a job on stderr: a spinner while it runs, then how it went."""

    def __init__(self, bar: Any | None) -> None:
        self._bar = bar
        self._tasks: dict[str, Any] = {}

    def start(self, name: str, text: str | None = None) -> None:
        if self._bar is not None:
            self._tasks[name] = self._bar.add_task(text or name, total=1)

    def finish(self, name: str, text: str) -> None:
        if self._bar is None:
            return
        if name not in self._tasks:
            self.start(name)
        self._bar.update(self._tasks[name], completed=1, description=text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def live_lines() -> Iterator[LiveLines]:
    """Live lines on stderr when it is a terminal and FLYWHEEL_NO_PROGRESS is unset
    (`progress` draws one bar with a known total; this is a list that grows)."""
    from flywheel._core.settings import Settings

    if not sys.stderr.isatty() or Settings.from_env().no_progress:
        yield LiveLines(None)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(finished_text="[green]✓[/green]"),
                  TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err(), transient=True) as bar:
        yield LiveLines(bar)


@contextmanager
def view_progress(verb: str) -> Iterator[Callable[[str, int, int], None]]:
    """One progress bar per named part of a job (a feature view, say), each with its own
    total: the yielded function takes (name, done, total)."""
    from flywheel._core.settings import Settings

    if not sys.stderr.isatty() or Settings.from_env().no_progress:
        yield lambda name, done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err(),
                  transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"{verb} {name}", total=total)
            bar.update(tasks[name], completed=done, total=total)

        yield update


# Errors --------------------------------------------------------------------------------
class Interrupted(Exception):
    """Ctrl-C inside a command (Typer would otherwise turn it into a silent exit 130)."""


class FlywheelGroup(TyperGroup):
    """The root group: runs a command and turns every error into one line on stderr."""

    # `ctx` is Typer's own (vendored) click Context; Any keeps the override compatible.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted() from exc

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        handler = _OneLine(logging.WARNING)
        logger = logging.getLogger("flywheel")
        logger.addHandler(handler)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
            code = result if type(result) is int else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # the one place where any error becomes one line
            code = report_error(exc)
        finally:
            logger.removeHandler(handler)
        if standalone_mode:
            sys.exit(code)
        return code


def report_error(exc: BaseException) -> int:
    """Print `error: ...` on one line and return the exit code: 2 for the user's errors
    (bad input, usage, a missing file), 1 for anything unexpected."""
    from flywheel._core.errors import FlywheelError

    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if type(exc).__name__ == "NoArgsIsHelpError":
        return 0  # Typer has already printed the help
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return 1
    if isinstance(exc, FlywheelError):
        return _fail(exc.one_line())
    if isinstance(exc, typer.TyperException):  # usage errors: bad option, missing argument
        ctx = getattr(exc, "ctx", None)
        where = f" — see `{ctx.command_path} --help`" if ctx is not None else ""
        return _fail(exc.format_message() + where)
    if isinstance(exc, Interrupted | KeyboardInterrupt | typer.Abort):
        return _fail(str(exc) or "interrupted")
    if isinstance(exc, OSError):
        return _fail(_os_error(exc))
    validation = _pydantic_message(exc)
    if validation is not None:
        return _fail(validation)
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
    first = (str(exc).splitlines() or [""])[0]
    return _fail(f"unexpected {type(exc).__name__}: {first} "
                 f"(set {DEBUG_ENV}=1 for the traceback)", code=1)


def _debug() -> bool:
    from flywheel._core.settings import Settings

    return Settings.from_env().debug


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    return code


def _os_error(exc: OSError) -> str:
    reason = {FileNotFoundError: "no such file or folder",
              PermissionError: "permission denied",
              IsADirectoryError: "is a folder, not a file"}.get(type(exc))
    reason = reason or exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _pydantic_message(exc: BaseException) -> str | None:
    if "pydantic" not in sys.modules:  # nothing raised it; do not pay for the import
        return None
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return None
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"invalid value at {where}: {first['msg']}"


def _silence_stdout() -> None:
    # The reader went away (say, `| head`); make the interpreter's final flush quiet too.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


class _OneLine(logging.Handler):
    """Library log records as one line each (`warning: ...`), tracebacks only in debug."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(record.getMessage().split())
            sys.stderr.write(f"{record.levelname.lower()}: {message}\n")
            if record.exc_info and _debug():
                traceback.print_exception(*record.exc_info, file=sys.stderr)
        except Exception:  # a log line must never break a command
            self.handleError(record)

