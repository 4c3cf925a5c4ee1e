"""`flywheel serve`: the HTTP server (collector, Snowplow tracker protocol, features,
models, the Open Inference Protocol, metrics), in one process or several."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flywheel._core.errors import FlywheelError

__all__ = ["register", "serve"]


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the CLI."""
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on (default: server.host in flywheel.yaml, "
        "127.0.0.1). Any non-loopback address requires tokens.")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", min=0, max=65535,
        help="Port (default: server.port, 8000); 0 picks a free one.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Worker processes sharing the port (default 1). Each opens "
        "the project on its own; SIGTERM stops them all after answering what is in flight "
        "and committing their predictions.")] = 1,
    project_dir: Annotated[Path | None, typer.Option(
        "--project", metavar="DIR", help="Project folder (default: the global --project, "
        "FLYWHEEL_PROJECT, or the working folder and its parents).")] = None,
) -> None:
    """Serve the project over HTTP until interrupted (docs at /docs)."""
    # Imported here: uvicorn and FastAPI are not needed by the other commands.
    from flywheel.api.server import serve as run
    from flywheel.cli.context import state
    from flywheel.project import Project

    try:
        with Project.open(project_dir or state(ctx).project) as project:
            run(project, host, port, workers=workers)
    except FlywheelError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        raise typer.Exit(2) from None
