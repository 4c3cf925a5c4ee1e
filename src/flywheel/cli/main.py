"""The `flywheel` command: global options, and one module per command group."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli import (
    apply,
    demo,
    features,
    ingest,
    init,
    log,
    models,
    monitor,
    predict,
    runs,
    schemas,
    simulate,
    token,
    transform,
)
from flywheel.cli import run as run_group
from flywheel.cli.context import CliState
from flywheel.cli.errors import FlywheelGroup
from flywheel.cli.groups import epilog

HELP = ("Flywheel: strict ingestion, an immutable event log, and the rest of the ML loop, "
        "from one project folder.")

EPILOG = epilog(
    "flywheel init shop && cd shop", "flywheel apply", "flywheel ingest events.ndjson",
    "flywheel log stats",
    note="Errors print one line and exit 2 (1 when unexpected: FLYWHEEL_DEBUG=1 shows the "
    "traceback). FLYWHEEL_NO_PROGRESS=1 hides progress bars.")

app = typer.Typer(
    cls=FlywheelGroup, name="flywheel", help=HELP, epilog=EPILOG, no_args_is_help=True,
    add_completion=False, rich_markup_mode="rich", pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from flywheel import __version__

        typer.echo(f"flywheel {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    project: Annotated[Path | None, typer.Option(
        "--project", "-p", metavar="DIR", show_default=False,
        help="Project folder (default: FLYWHEEL_PROJECT, else the working folder or a "
        "parent holding flywheel.yaml).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    ctx.obj = CliState(project)


for _group in (init, apply, ingest, schemas, log, token, transform, features, run_group, runs,
               models, predict, monitor, simulate, demo):
    _group.register(app)




def _register_optional(name: str) -> None:
    # Command groups written separately (serve) join when their module exists.
    try:
        module = importlib.import_module(f"flywheel.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"flywheel.cli.{name}":
            raise
        return
    module.register(app)


_register_optional("serve")


def run() -> None:
    """Console-script entry point: exits with 0, 1 (unexpected error) or 2 (bad input)."""
    typer.main.get_command(app).main(prog_name="flywheel")


if __name__ == "__main__":
    run()
