"""`flywheel ingest FILE|-`: NDJSON, CSV or Parquet into the log, streamed chunk by chunk."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.errors import Interrupted
from flywheel.cli.groups import epilog
from flywheel.cli.output import note, print_table, shorten
from flywheel.cli.progress import Advance, progress
from flywheel.ingest.inputs import STDIN, Format

if TYPE_CHECKING:
    from flywheel.ingest.csv_rows import CsvRecords
    from flywheel.ingest.layout import Layout
    from flywheel.ingest.result import IngestResult
    from flywheel.ingest.tabular import FilePlan
    from flywheel.project import Project
    from flywheel.schemas.registry import VersionSpec

SHOWN_ERRORS = 5

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
    from flywheel._core.errors import InputError
    from flywheel.ingest import inputs

    chosen = inputs.detect_format(source, fmt)
    columns = Columns(time_column, id_column, time_now)
    if chosen is Format.NDJSON and columns.given:
        raise InputError(f"{columns.given} applies to CSV and Parquet rows; NDJSON events "
                         "carry their own envelope (event_time, event_id)")
    if chosen is Format.CSV and schema is None:
        raise InputError("CSV input needs --schema: the schema every row is an event of",
                         hint="e.g. --schema iglu:com.example/page_view/jsonschema/1-0-0")
    if chosen is not Format.CSV and schema is None and columns.given:
        raise InputError(f"{columns.given} applies to rows of --schema; the events of a "
                         "file with schema and data columns carry their own envelope")
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
        result, tally = _ingest(project, source, chosen, spec, columns)
        elapsed = time.perf_counter() - started
    _summary(source, chosen, result, tally, elapsed)


def _lookup(project: Project, uri: str | None) -> VersionSpec | None:
    if uri is None:
        return None
    from flywheel._core.errors import UnknownSchemaError
    from flywheel.schemas.keys import SchemaKey

    if not uri.startswith("iglu:") and uri.count("/") == 1:
        uri = _latest(project, uri)
    SchemaKey.parse(uri)  # a clear error for a malformed key
    spec = project.schemas.lookup(uri)
    if spec is None:
        raise UnknownSchemaError(f"schema {uri} is not registered",
                                 hint="add it under schemas/ and run `flywheel apply`")
    return spec


@dataclass(frozen=True, slots=True)
class Columns:
    """The options naming a file's envelope columns."""

    time_column: str | None
    id_column: str | None
    time_now: bool

    @property
    def given(self) -> str:
        """The options given, for a message ("" when none is)."""
        flags = [flag for flag, value in (("--time-column", self.time_column),
                                          ("--id-column", self.id_column),
                                          ("--time-now", self.time_now)) if value]
        return ", ".join(flags)


def _latest(project: Project, family: str) -> str:
    """`vendor/name` as the key of its newest registered version."""
    from flywheel._core.errors import UnknownSchemaError

    vendor, name = family.split("/")
    keys = [k for k in project.schemas.current.keys if (k.vendor, k.name) == (vendor, name)]
    if not keys:
        raise UnknownSchemaError(f"no version of schema {family} is registered",
                                 hint="add it under schemas/ (or `flywheel schemas infer "
                                 "FILE --name VENDOR/NAME`) and run `flywheel apply`")
    return str(max(keys))


def _ingest(project: Project, source: str, chosen: Format, spec: VersionSpec | None,
            columns: Columns) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import csv_rows, inputs, parquet_rows

    name = "stdin" if source == STDIN else source
    ids = _ids(project, source)
    if chosen is Format.PARQUET:
        with closing(parquet_rows.parquet_file(source)) as parquet:
            rows = parquet.metadata.num_rows
            if spec is None:
                with progress(f"ingesting {name}", rows, "rows") as advance:
                    events = parquet_rows.parquet_events(parquet, None, None, advance)
                    return _whole(project, events, "row", ids.of_rows)
            arrow = parquet.schema_arrow
            plan = _plan(project, spec, source, columns, arrow.names,
                         {f.name: f.type for f in arrow}, ids)
            with progress(f"ingesting {name}", rows, "rows") as advance:
                return _parquet(project, plan, parquet, advance)
    with inputs.open_input(source) as stream:
        total = inputs.input_size(stream)
        if chosen is Format.CSV:
            assert spec is not None  # checked by the caller
            records = csv_rows.CsvRecords(stream)
            plan = _plan(project, spec, source, columns, records.header, None, ids)
            with progress(f"ingesting {name}", total, "bytes") as advance:
                return _csv(project, plan, records, advance)
        with progress(f"ingesting {name}", total, "bytes") as advance:
            return _ndjson(project, stream, advance, ids.of_rows)


@dataclass(frozen=True, slots=True)
class FileIds:
    """The ids a file's rows without one get: by position, and, for the column-wise path,
    as a block prefix (None when the rows must keep the ids of an earlier release)."""

    of_rows: Callable[[int], str] | None
    prefix: str | None


def _ids(project: Project, source: str) -> FileIds:
    from flywheel.ingest import inputs

    legacy = inputs.legacy_ids(source)
    if legacy is not None and project.log_store.index.known(
            [legacy(position) for position in range(inputs.LEGACY_PROBE)]):
        note(f"{source} was ingested by an earlier release: its rows keep the ids they got "
             "then, so nothing is stored twice (row by row, which is slower)")
        return FileIds(legacy, None)
    return FileIds(inputs.stable_ids(source), inputs.id_prefix(source))


@dataclass(frozen=True, slots=True)
class Route:
    """How a file of rows is ingested: its layout, and the schema's column-wise checks
    (None when the row path must judge every row)."""

    source: str
    spec: VersionSpec
    layout: Layout
    plan: FilePlan | None
    ids: Callable[[int], str] | None


def _plan(project: Project, spec: VersionSpec, source: str, columns: Columns,
          names: list[str], types: dict[str, Any] | None, ids: FileIds) -> Route:
    from flywheel.ingest import layout, tabular
    from flywheel.ingest.columnar import compile_plan

    shown = "stdin" if source == STDIN else source
    found, warnings = layout.resolve(names, spec, source=shown,
                                     time_column=columns.time_column,
                                     id_column=columns.id_column, time_now=columns.time_now,
                                     types=types)
    for warning in warnings:
        note(warning)
    declared = [c for c in spec.table.columns if c.name in spec.declared]
    checks = compile_plan(project.schemas.current.document(spec.key), declared)
    if isinstance(checks, str) or (ids.prefix is None and ids.of_rows is not None):
        return Route(source, spec, found, None, ids.of_rows)
    ingestor = project.ingestor
    plan = tabular.FilePlan(spec=spec, plan=checks, layout=found, limits=ingestor.limits,
                            door="file", id_prefix=ids.prefix,
                            text=types is None, row_path=ingestor.row_preparer)
    return Route(source, spec, found, plan, ids.of_rows)


def _parquet(project: Project, route: Route, parquet: Any,
             advance: Advance) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import parquet_rows, tabular

    return _rows(project, route,
                 lambda: parquet_rows.parquet_events(parquet, route.spec, route.layout, advance),
                 lambda plan: tabular.parquet_chunks(plan, parquet, tabular.CHUNK_ROWS, advance))


def _csv(project: Project, route: Route, records: CsvRecords,
         advance: Advance) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import csv_rows, tabular

    return _rows(project, route,
                 lambda: csv_rows.csv_events(records, route.spec, route.layout, advance),
                 lambda plan: tabular.csv_chunks(plan, records, tabular.CHUNK_ROWS, advance))


def _rows(project: Project, route: Route, events: Callable[[], Iterable[dict[str, Any]]],
          chunks: Callable[[FilePlan], Iterator[Any]]) -> tuple[IngestResult, Tally]:
    """A file of rows through the column-wise path, or row by row when it cannot judge them."""
    from flywheel.ingest import tabular

    if route.plan is None:
        return _whole(project, events(), "row", route.ids)
    return _tally(tabular.ingest_chunks(project.ingestor, route.plan, chunks(route.plan)))


def _tally(result: IngestResult) -> tuple[IngestResult, Tally]:
    tally = Tally()
    tally.add(result, 0, None, "row")
    return result, tally


def _whole(project: Project, events: Iterable[dict[str, Any]], unit: str,
           ids: Callable[[int], str] | None) -> tuple[IngestResult, Tally]:
    result = project.ingestor.ingest(events, door="file", fallback_id=ids)
    tally = Tally()
    tally.add(result, 0, None, unit)
    return result, tally


def _ndjson(project: Project, stream: IO[bytes], advance: Advance,
            ids: Callable[[int], str] | None) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import ndjson
    from flywheel.ingest.result import IngestResult

    limit = project.config.ingest.max_event_bytes
    total, tally, shift = IngestResult(), Tally(), 0
    ingestor = project.ingestor
    # Longer lines are cut while reading: they are too large anyway, and must not be held.
    chunks = ndjson.ndjson_chunks(stream, max_line_bytes=max(4 * limit, 1 << 20))
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
