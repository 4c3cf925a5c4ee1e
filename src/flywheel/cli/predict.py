"""`flywheel predict`: score a derived table or a file of entity rows with a registered
model, each row with its features point in time, into a Parquet file or a derived table."""

from __future__ import annotations

from typing import Annotated

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import epilog
from flywheel.cli.output import print_table
from flywheel.cli.progress import rows_progress

DEFAULT_CHUNK_SIZE = 100_000
"""Rows scored at a time (the SDK's default, repeated so that `--help` imports nothing)."""

EPILOG = epilog(
    "flywheel predict --model purchase@champion --input user_daily --output scores.parquet",
    "flywheel predict --model purchase/3 --input users.csv --as-of 2026-03-01T00:00:00Z "
    "--output table:user_scores",
    note="Each input row needs the entity keys of the model's feature service and an "
    "event_timestamp (--timestamp-column names another; --as-of gives every row one time); "
    "it gets the features it had at that time, "
    "from the same point-in-time join that built the training set. Memory follows "
    "--chunk-size, not the input. Every output row names the model and its version.")


def predict_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(
        "--model", "-m", metavar="NAME[@ALIAS|/VERSION]",
        help="The registered model: purchase@champion, purchase/3, or purchase (newest).")],
    input: Annotated[str, typer.Option(
        "--input", "-i", metavar="TABLE|FILE",
        help="A derived table, or a .parquet, .csv or .ndjson file of entity rows.")],
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE|table:NAME",
        help="A Parquet file, or table:NAME for a derived table of the scores.")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="TIME",
        help="Score every row as of this time (ISO 8601) instead of its event_timestamp.")
    ] = None,
    timestamp_column: Annotated[str, typer.Option(
        "--timestamp-column", metavar="COLUMN",
        help="The input's column of each row's time.")] = "event_timestamp",
    chunk_size: Annotated[int, typer.Option(
        "--chunk-size", min=1, metavar="ROWS", help="Rows joined and scored at a time.")
    ] = DEFAULT_CHUNK_SIZE,
    with_features: Annotated[bool, typer.Option(
        "--with-features", help="Write the features each row was scored with too.")] = False,
) -> None:
    """Score many entity rows with a registered model: batch predictions."""
    with open_project(ctx) as project, rows_progress(f"scoring with {model}") as advance:
        result = project.predict_batch(
            model=model, input=input, output=output, as_of=as_of, chunk_size=chunk_size,
            timestamp_column=timestamp_column, with_features=with_features,
            on_progress=advance)
    print_table(["model", "version", "input", "rows", "chunks", "output", "seconds"],
                [(result.model, result.version, result.input, result.rows, result.chunks,
                  result.output, round(result.seconds, 2))], title="batch predictions")


def register(app: typer.Typer) -> None:
    app.command("predict", epilog=EPILOG,
                short_help="Score a table or file of entity rows with a registered model.")(
        predict_command)
