"""`flywheel schemas infer FILE`: a first schema for the columns of a Parquet or CSV file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli.context import state
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import note
from flywheel.ingest.inputs import STDIN, Format

app = command_group("schemas", help="Event schemas.",
                    short_help="Event schemas: infer one from a file.")

INFER_EPILOG = epilog(
    "flywheel schemas infer orders.parquet --name com.acme/orders",
    "flywheel schemas infer orders.csv --name com.acme/orders --time-column created_at "
    "--id-column order_id",
    "flywheel schemas infer orders.parquet --name com.acme/orders --output -",
    note="Writes schemas/VENDOR/NAME/jsonschema/1-0-0 in the project (never over an "
    "existing file without --force). Every column becomes a property, required when no "
    "cell is empty, except the time and id columns, which fill each event's envelope. "
    "Review the result (bounds, enums, patterns), then `flywheel apply` and "
    "`flywheel ingest FILE --schema VENDOR/NAME`.")


@app.command("infer", epilog=INFER_EPILOG)
def infer_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FILE", help="A Parquet or CSV file.")],
    name: Annotated[str, typer.Option(
        "--name", "-n", metavar="VENDOR/NAME", help="The schema's vendor and name.")],
    time_column: Annotated[str | None, typer.Option(
        "--time-column", metavar="COL",
        help="The column holding each event's time (default: event_time).")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id-column", metavar="COL",
        help="The column holding each event's id (default: event_id).")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="PATH|-",
        help="Where to write it (default: the project's schemas folder; - for stdout).")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    fmt: Annotated[Format | None, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="Override the format told by the extension.")] = None,
) -> None:
    """Write a JSON Schema (1-0-0) for the columns of a Parquet or CSV file."""
    from flywheel._core.errors import InputError
    from flywheel.ingest import csv_rows, inputs, parquet_rows, survey
    from flywheel.schemas.infer import infer_document, parse_name

    key = parse_name(name)
    target = None if output == "-" else Path(output) if output else _project_path(ctx, key)
    if target is not None and target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it",
                         hint="or add a new version beside it")
    chosen = inputs.detect_format(source, fmt)
    if chosen is Format.NDJSON or source == STDIN:
        raise InputError("schemas infer reads a Parquet or CSV file (NDJSON events already "
                         "name their schema)")
    if chosen is Format.PARQUET:
        parquet = parquet_rows.parquet_file(source)
        try:
            facts = survey.survey_parquet(parquet)
        finally:
            parquet.close()
    else:
        with inputs.open_input(source) as stream:
            facts = survey.survey_csv(csv_rows.CsvRecords(stream))
    names = [f.name for f in facts]
    envelope = _envelope(names, time_column, id_column)
    document, notes = infer_document(key, facts, source=Path(source).name,
                                     envelope=tuple(e for e in envelope if e))
    _no_time_note(names, envelope[0])
    for line in notes:
        note(f"note: {line}")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if target is None:
        sys.stdout.write(text)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    note(f"wrote {target} ({len(document['properties'])} properties, "
         f"{len(document['required'])} required)")
    time, event_id = envelope
    flags = "".join([
        f" --time-column {time}" if time and time != "event_time" else "",
        f" --id-column {event_id}" if event_id and event_id != "event_id" else "",
        "" if time else " --time-now"])
    note(f"next: flywheel apply && flywheel ingest {source} --schema "
         f"{key.vendor}/{key.name}{flags}")


def _envelope(names: list[str], time_column: str | None,
              id_column: str | None) -> tuple[str, str]:
    """(time column or "", id column or "") of the file; checks the names exist."""
    from flywheel._core.errors import InputError
    from flywheel.ingest.layout import ID, TIME

    for flag, given, default in (("--time-column", time_column, TIME),
                                 ("--id-column", id_column, ID)):
        if given is not None and given not in names:
            raise InputError(f"{flag} {given}: the file has no such column "
                             f"(its columns: {', '.join(names[:12])})")
        if given is not None and given != default and default in names:
            raise InputError(f"{flag} {given}: the file also has an {default} column; "
                             "rename or drop one of them")
    if time_column is not None and time_column == id_column:
        raise InputError(f"--time-column and --id-column both name {time_column}")
    time = time_column or (TIME if TIME in names else "")
    return time, id_column or (ID if ID in names else "")


def _no_time_note(names: list[str], time: str) -> None:
    from flywheel.ingest.layout import TIME, looks_like_time

    if time:
        return
    guess = next((n for n in names if looks_like_time(n)), None)
    hint = f"; if {guess} is it, pass --time-column {guess}" if guess else ""
    note(f"note: the file has no {TIME} column{hint}; otherwise ingest it with "
         "--time-now (the ingestion time)")


def _project_path(ctx: typer.Context, key: object) -> Path:
    from flywheel.project import find_project_dir
    from flywheel.schemas.keys import SchemaKey

    assert isinstance(key, SchemaKey)
    root = find_project_dir(state(ctx).project)
    return root / "schemas" / key.vendor / key.name / key.format / key.version


def register(root: typer.Typer) -> None:
    add_group(root, app)
