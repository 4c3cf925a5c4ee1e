"""Progress on stderr: a bar with a known total, live lines, one bar per named part.

Each is drawn only when stderr is a terminal and FLYWHEEL_NO_PROGRESS is unset (`progress_shown`);
otherwise it yields a function that does nothing, so commands never ask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from flywheel.cli.output import err

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

Advance = Callable[[int], None]
"""Report progress as an absolute position (bytes or rows done so far)."""


def progress_shown() -> bool:
    """Whether to draw progress at all: the one place that reads the terminal and the setting."""
    from flywheel._core.settings import Settings

    return sys.stderr.isatty() and not Settings.from_env().no_progress


@contextmanager
def _bar(*columns: ProgressColumn) -> Iterator[Progress]:
    # Transient: once the job ends the bars vanish and only the command's own output stays.
    from rich.progress import Progress

    with Progress(*columns, console=err(), transient=True) as bar:
        yield bar


@contextmanager
def progress(description: str, total: int | None, unit: str) -> Iterator[Advance]:
    """A progress bar on stderr when it is a terminal (and FLYWHEEL_NO_PROGRESS is unset).

    `unit` is "bytes" or "rows"; the yielded function takes the position reached so far.
    """
    if not progress_shown():
        yield lambda position: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    counter = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    with _bar(TextColumn("{task.description}"), BarColumn(), counter, TimeElapsedColumn(),
              TimeRemainingColumn()) as bar:
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
    if not progress_shown():
        yield LiveLines(None)
        return
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    with _bar(SpinnerColumn(finished_text="[green]✓[/green]"),
              TextColumn("{task.description}"), TimeElapsedColumn()) as bar:
        yield LiveLines(bar)


@contextmanager
def view_progress(verb: str) -> Iterator[Callable[[str, int, int], None]]:
    """One progress bar per named part of a job (a feature view, say), each with its own
    total: the yielded function takes (name, done, total)."""
    if not progress_shown():
        yield lambda name, done, total: None
        return
    with _counted_bar() as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"{verb} {name}", total=total)
            bar.update(tasks[name], completed=done, total=total)

        yield update


@contextmanager
def rows_progress(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A bar of rows whose total the job tells as it goes, with each position (None while
    it is not known: a file read as it streams)."""
    if not progress_shown():
        yield lambda done, total: None
        return
    with _counted_bar() as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _counted_bar() -> AbstractContextManager[Progress]:
    """Bars that count items (done of total), with the time spent and the time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return _bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn())
