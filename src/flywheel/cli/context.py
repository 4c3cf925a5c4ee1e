"""The global options of `flywheel` and the project session every command opens.

The project is imported only inside `open_project`, so that `flywheel --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from flywheel.project import Project


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


