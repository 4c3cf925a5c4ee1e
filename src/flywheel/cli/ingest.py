"""`flywheel ingest FILE|-`: NDJSON, CSV or Parquet into the log, streamed chunk by chunk."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli._common import (
    Advance,
    Interrupted,
    epilog,
    note,
    open_project,
    print_table,
    progress,
    shorten,
)
from flywheel.ingest.files import STDIN, Format

if TYPE_CHECKING:
    from flywheel.ingest.result import IngestResult
    from flywheel.project import Project
    from flywheel.schemas.registry import VersionSpec

SHOWN_ERRORS = 5

EPILOG = epilog(
    "flywheel ingest events.ndjson", "cat events.ndjson | flywheel ingest -",
    "flywheel ingest orders.csv --schema iglu:com.acme/order/jsonschema/1-0-0",
    "flywheel ingest export.parquet            [dim]# with columns schema and data[/dim]",
    note="Rejected events never stop a file: they are kept, with the reason, in bad rows "
    "(`flywheel log bad-rows`), and the command still exits 0. Exit code 2 means the input "
    "could not be read at all. CSV cells are typed by the schema; an empty cell is an absent "
    "property; columns event_id and event_time fill the envelope.")


@dataclass(slots=True)
class Tally:
    """What the summary shows: counts by reason and the first few errors, with locations."""

    by_reason: Counter[str] = field(default_factory=Counter)
    first: list[tuple[int, str, str, str]] = field(default_factory=list)

    def add(self, result: IngestResult, shift: int, locate: list[int] | None,
            unit: str) -> None:
        self.by_reason.update(e.reason for e in result.errors)
        for error in result.errors[: max(SHOWN_ERRORS - len(self.first), 0)]:
            where = locate[error.index] if locate is not None else error.index + shift + 1
            self.first.append((error.index + shift, f"{unit} {where}", error.reason,
                               error.message))
        if result.errors_omitted:
            self.by_reason["(not listed)"] += result.errors_omitted


def ingest_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(
        metavar="FILE|-", help="The file to read, or - for standard input (NDJSON).")],
    schema: Annotated[str | None, typer.Option(
        "--schema", "-s", metavar="IGLU_URI",
        help="Schema of every row (CSV, and Parquet without schema/data columns).")] = None,
    fmt: Annotated[Format | None, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="Override the format told by the extension.")] = None,
) -> None:
    """Validate events from a file and append them to the log; rejects go to bad rows."""
    from flywheel._core.errors import InputError
    from flywheel.ingest import files

    chosen = files.detect_format(source, fmt)
    if chosen is Format.CSV and schema is None:
        raise InputError("CSV input needs --schema: the schema every row is an event of",
                         hint="e.g. --schema iglu:com.example/page_view/jsonschema/1-0-0")
    if chosen is Format.NDJSON and schema is not None:
        raise InputError("--schema applies to CSV and Parquet rows; each NDJSON line names "
                         "its own schema", hint='e.g. {"schema": "iglu:...", "data": {...}}')
    if chosen is Format.PARQUET and source == STDIN:
        raise InputError("Parquet cannot be read from standard input; pass the file's path")
    if source == STDIN and sys.stdin.isatty():
        note("reading events from the terminal, one JSON object per line; end with Ctrl-D")
    with open_project(ctx) as project:
        spec = _lookup(project, schema)
        started = time.perf_counter()
        result, tally = _ingest(project, source, chosen, spec)
        elapsed = time.perf_counter() - started
    _summary(source, chosen, result, tally, elapsed)


def _lookup(project: Project, uri: str | None) -> VersionSpec | None:
    if uri is None:
        return None
    from flywheel._core.errors import UnknownSchemaError
    from flywheel.schemas.keys import SchemaKey

    SchemaKey.parse(uri)  # a clear error for a malformed key
    spec = project.schemas.lookup(uri)
    if spec is None:
        raise UnknownSchemaError(f"schema {uri} is not registered",
                                 hint="add it under schemas/ and run `flywheel apply`")
    return spec


def _ingest(project: Project, source: str, chosen: Format,
            spec: VersionSpec | None) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import files

    name = "stdin" if source == STDIN else source
    if chosen is Format.PARQUET:
        with (closing(files.parquet_file(source)) as parquet,
              progress(f"ingesting {name}", parquet.metadata.num_rows, "rows") as advance):
            return _whole(project, files.parquet_events(parquet, spec, advance), "row",
                          files.stable_ids(source))
    with files.open_input(source) as stream:
        total = files.input_size(stream)
        with progress(f"ingesting {name}", total, "bytes") as advance:
            if chosen is Format.CSV:
                assert spec is not None  # checked by the caller
                return _whole(project, files.csv_events(stream, spec, advance), "row",
                              files.stable_ids(source))
            return _ndjson(project, stream, advance, files.stable_ids(source))


def _whole(project: Project, events: Iterable[dict[str, Any]], unit: str,
           ids: Callable[[int], str] | None) -> tuple[IngestResult, Tally]:
    result = project.ingestor.ingest(events, door="file", fallback_id=ids)
    tally = Tally()
    tally.add(result, 0, None, unit)
    return result, tally


def _ndjson(project: Project, stream: IO[bytes], advance: Advance,
            ids: Callable[[int], str] | None) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import files
    from flywheel.ingest.result import IngestResult

    limit = project.config.ingest.max_event_bytes
    total, tally, shift = IngestResult(), Tally(), 0
    ingestor = project.ingestor
    # Longer lines are cut while reading: they are too large anyway, and must not be held.
    chunks = files.ndjson_chunks(stream, max_line_bytes=max(4 * limit, 1 << 20))
    try:
        for chunk in chunks:
            fallback = None if ids is None else [ids(shift + i) for i in range(len(chunk.items))]
            result = ingestor.ingest_raw(chunk.raws, chunk.items, door="file",
                                         fallback_ids=fallback)
            tally.add(result, shift, chunk.lines, "line")
            total.merge(result, shift)
            shift += len(chunk.items)
            advance(chunk.position)
    except KeyboardInterrupt:
        if not shift:
            raise
        raise Interrupted(
            f"interrupted; at least the first {shift:,} events were committed "
            f"({total.accepted:,} stored, {total.rejected:,} kept as bad rows)") from None
    return total, tally


def _summary(source: str, chosen: Format, result: IngestResult, tally: Tally,
             elapsed: float) -> None:
    rate = result.received / elapsed if elapsed > 0 else 0.0
    rows: list[tuple[str, object]] = [
        ("received", result.received), ("accepted", result.accepted),
        ("rejected", result.rejected),
        *((f"  {reason}", count) for reason, count in sorted(tally.by_reason.items())),
        ("duplicates", result.duplicates), ("events/s", round(rate)),
        ("seconds", round(elapsed, 2)),
    ]
    title = f"ingested {'stdin' if source == STDIN else source} ({chosen.value})"
    print_table(["", "count"], rows, title=title)
    if tally.first:
        shown = [(i, at, reason, shorten(message, 100)) for i, at, reason, message in tally.first]
        print_table(["#", "at", "reason", "message"], shown, title="first errors")
    if result.rejected:
        note(f"hint: {result.rejected} rejected event(s) are kept in bad rows; "
             "see `flywheel log bad-rows`, fix them, then `flywheel log recover`")


def register(app: typer.Typer) -> None:
    app.command("ingest", epilog=EPILOG,
                short_help="Ingest NDJSON, CSV or Parquet events from a file or stdin.")(
        ingest_command)
