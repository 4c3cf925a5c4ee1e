"""`flywheel ingest FILE|-`: NDJSON, CSV or Parquet into the log, streamed chunk by chunk."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from flywheel.cli.context import open_project
from flywheel.cli.errors import Interrupted
from flywheel.cli.groups import epilog
from flywheel.cli.output import note, print_table, shorten
from flywheel.cli.progress import progress
from flywheel.ingest.inputs import STDIN, Format

if TYPE_CHECKING:
    from flywheel.ingest.file_report import FileIngestReport
    from flywheel.ingest.files import FileColumns
    from flywheel.project import Project


EPILOG = epilog(
    "flywheel ingest events.ndjson", "cat events.ndjson | flywheel ingest -",
    "flywheel ingest orders.csv --schema iglu:com.acme/order/jsonschema/1-0-0",
    "flywheel ingest orders.parquet -s com.acme/order --time-column created_at "
    "--id-column order_id",
    "flywheel ingest export.parquet            [dim]# with columns schema and data[/dim]",
    note="Rejected events never stop a file: they are kept, with the reason, in bad rows "
    "(`flywheel log bad-rows`), and the command still exits 0. Exit code 2 means the input "
    "could not be read at all. CSV and Parquet rows are the data of --schema: CSV cells are "
    "typed by the schema and an empty cell is an absent property; the columns event_time "
    "and event_id (or those named by --time-column and --id-column) fill the envelope. A "
    "file with no time column needs --time-now to take the ingestion time as event time. "
    "`flywheel schemas infer FILE` writes a schema for a file's columns.")


def ingest_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        metavar="FILE|-", help="The file to read, or - for standard input (NDJSON).")],
    schema: Annotated[str | None, typer.Option(
        "--schema", "-s", metavar="IGLU_URI",
        help="Schema of every row (CSV, and Parquet without schema/data columns): a key, "
        "or VENDOR/NAME for its newest version.")] = None,
    fmt: Annotated[Format | None, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="Override the format told by the extension.")] = None,
    time_column: Annotated[str | None, typer.Option(
        "--time-column", metavar="COL",
        help="The column holding each event's time (default: event_time).")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id-column", metavar="COL",
        help="The column holding each event's id (default: event_id; else ids derived "
        "from the file and the row, so that sending the file again stores nothing twice).",
    )] = None,
    time_now: Annotated[bool, typer.Option(
        "--time-now", help="The file has no event time: use the ingestion time.")] = False,
) -> None:
    """Validate events from a file and append them to the log; rejects go to bad rows."""
    from flywheel.ingest.files import FileColumns, check_options

    columns = FileColumns(time_column=time_column, id_column=id_column, time_now=time_now)
    # Checked before the project is opened: a wrong option is told first.
    check_options(source, fmt=fmt, schema=schema, columns=columns)
    if source == STDIN and sys.stdin.isatty():
        note("reading events from the terminal, one JSON object per line; end with Ctrl-D")
    with open_project(ctx) as project:
        report = _ingest(project, source, fmt, schema, columns)
    _summary(report)


def _ingest(project: Project, source: str, fmt: Format | None, schema: str | None,
            columns: FileColumns) -> FileIngestReport:
    from flywheel.ingest.file_report import IngestInterrupted

    try:
        return project.ingest_file(source, schema=schema, fmt=fmt,
                                   time_column=columns.time_column,
                                   id_column=columns.id_column, time_now=columns.time_now,
                                   on_progress=progress, on_note=note)
    except IngestInterrupted as exc:
        raise Interrupted(exc.message) from None


def _summary(report: FileIngestReport) -> None:
    result = report.result
    rate = result.received / report.seconds if report.seconds > 0 else 0.0
    rows: list[tuple[str, object]] = [
        ("received", result.received), ("accepted", result.accepted),
        ("rejected", result.rejected),
        *((f"  {reason}", count) for reason, count in sorted(report.by_reason.items())),
        ("duplicates", result.duplicates), ("events/s", round(rate)),
        ("seconds", round(report.seconds, 2)),
    ]
    title = f"ingested {report.name} ({report.format.value})"
    print_table(["", "count"], rows, title=title)
    if report.first_errors:
        shown = [(e.index, e.at, e.reason, shorten(e.message, 100))
                 for e in report.first_errors]
        print_table(["#", "at", "reason", "message"], shown, title="first errors")
    if result.rejected:
        note(f"hint: {result.rejected} rejected event(s) are kept in bad rows; "
             "see `flywheel log bad-rows`, fix them, then `flywheel log recover`")


def register(app: typer.Typer) -> None:
    app.command("ingest", epilog=EPILOG,
                short_help="Ingest NDJSON, CSV or Parquet events from a file or stdin.")(
        ingest_command)
