"""The file door: one NDJSON, CSV or Parquet file (or standard input) into the log.

The options are checked against the format first, the schema of a file of rows is chosen,
and the ids of rows without one are fixed by the file's identity; then CSV and Parquet go
column-wise when the schema's checks compile (row by row when they do not), NDJSON chunk by
chunk. Rejected events never stop a file: they go to bad rows and are counted in the report.

Messages name the options as `flywheel ingest` spells them (`--time-column`), as the layout
checks below do: the names of the keyword arguments follow them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from flywheel._core.errors import InputError, UnknownSchemaError
from flywheel.ingest.file_report import FileIngestReport, IngestInterrupted, Tally
from flywheel.ingest.inputs import STDIN, Advance, Format

if TYPE_CHECKING:
    from flywheel.ingest.csv_rows import CsvRecords
    from flywheel.ingest.ingestor import Ingestor, RegistryView
    from flywheel.ingest.layout import Layout
    from flywheel.ingest.result import IngestResult
    from flywheel.ingest.tabular import FilePlan
    from flywheel.log.dedupe import EventIdIndex
    from flywheel.schemas.registry import VersionSpec

__all__ = ["FileColumns", "OnNote", "OpenProgress", "check_options", "ingest_file",
           "log_note", "no_progress"]

OpenProgress = Callable[[str, int | None, str], AbstractContextManager[Advance]]
"""Opens the progress of a file for (title, total, unit: "bytes" or "rows"); the context
yields the function that takes the position reached so far."""

OnNote = Callable[[str], None]
"""Takes a note for the person ingesting: a warning about the file, not an error."""

_log = logging.getLogger(__name__)


@contextmanager
def no_progress(title: str, total: int | None, unit: str) -> Iterator[Advance]:
    """The default progress: none."""
    yield lambda position: None


def log_note(text: str) -> None:
    """The default for notes: a warning of the `logging` module."""
    _log.warning(text.removeprefix("warning: "))


@dataclass(frozen=True, slots=True, kw_only=True)
class FileColumns:
    """Which columns of a CSV or Parquet file fill the envelope (default: `event_time` and
    `event_id`); `time_now` takes the ingestion time for a file with no event time."""

    time_column: str | None = None
    id_column: str | None = None
    time_now: bool = False

    @property
    def given(self) -> str:
        """The options given, for a message ("" when none is)."""
        flags = [flag for flag, value in (("--time-column", self.time_column),
                                          ("--id-column", self.id_column),
                                          ("--time-now", self.time_now)) if value]
        return ", ".join(flags)


def check_options(source: str, *, fmt: Format | str | None = None, schema: str | None = None,
                  columns: FileColumns = FileColumns()) -> Format:
    """The format of `source`, once the options are known to fit it; raises `InputError`
    otherwise. Reads nothing but the name (a caller may check before opening a project)."""
    from flywheel.ingest import inputs

    chosen = inputs.detect_format(source, _format(fmt))
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
    return chosen


def _format(fmt: Format | str | None) -> Format | None:
    if fmt is None or isinstance(fmt, Format):
        return fmt
    try:
        return Format(fmt.lower())
    except ValueError:
        known = ", ".join(f.value for f in Format)
        raise InputError(f"unknown format {fmt!r} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class _Door:
    """What every step of one file uses."""

    source: str
    ingestor: Ingestor
    schemas: RegistryView
    progress: OpenProgress
    note: OnNote

    @property
    def title(self) -> str:
        return f"ingesting {'stdin' if self.source == STDIN else self.source}"


def ingest_file(source: str, *, ingestor: Ingestor, index: EventIdIndex,
                schemas: RegistryView, fmt: Format | str | None = None,
                schema: str | None = None, columns: FileColumns = FileColumns(),
                progress: OpenProgress | None = None,
                on_note: OnNote | None = None) -> FileIngestReport:
    """Ingest the file `source` (`-`: standard input, NDJSON). `schema` is the schema of
    every row of a CSV file (or a Parquet file without schema/data columns): a key, or
    `vendor/name` for its newest registered version. Raises `InputError` when the input
    cannot be read at all, `IngestInterrupted` on Ctrl-C once some events are committed."""
    chosen = check_options(source, fmt=fmt, schema=schema, columns=columns)
    door = _Door(source, ingestor, schemas, progress or no_progress, on_note or log_note)
    spec = _lookup(schemas, schema)
    started = time.perf_counter()
    result, tally = _ingest(door, chosen, spec, columns, _ids(door, index))
    return tally.report(source, chosen, result, time.perf_counter() - started)


def _lookup(schemas: RegistryView, uri: str | None) -> VersionSpec | None:
    if uri is None:
        return None
    from flywheel.schemas.keys import SchemaKey

    if not uri.startswith("iglu:") and uri.count("/") == 1:
        uri = _latest(schemas, uri)
    SchemaKey.parse(uri)  # a clear error for a malformed key
    spec = schemas.lookup(uri)
    if spec is None:
        raise UnknownSchemaError(f"schema {uri} is not registered",
                                 hint="add it under schemas/ and run `flywheel apply`")
    return spec


def _latest(schemas: RegistryView, family: str) -> str:
    """`vendor/name` as the key of its newest registered version."""
    vendor, name = family.split("/")
    keys = [k for k in schemas.current.keys if (k.vendor, k.name) == (vendor, name)]
    if not keys:
        raise UnknownSchemaError(f"no version of schema {family} is registered",
                                 hint="add it under schemas/ (or `flywheel schemas infer "
                                 "FILE --name VENDOR/NAME`) and run `flywheel apply`")
    return str(max(keys))


def _ingest(door: _Door, chosen: Format, spec: VersionSpec | None, columns: FileColumns,
            ids: _FileIds) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import csv_rows, inputs, parquet_rows

    if chosen is Format.PARQUET:
        with closing(parquet_rows.parquet_file(door.source)) as parquet:
            rows = parquet.metadata.num_rows
            if spec is None:
                with door.progress(door.title, rows, "rows") as advance:
                    events = parquet_rows.parquet_events(parquet, None, None, advance)
                    return _whole(door, events, ids.of_rows)
            arrow = parquet.schema_arrow
            route = _route(door, spec, columns, arrow.names, {f.name: f.type for f in arrow},
                           ids)
            with door.progress(door.title, rows, "rows") as advance:
                return _parquet(door, route, parquet, advance)
    with inputs.open_input(door.source) as stream:
        total = inputs.input_size(stream)
        if chosen is Format.CSV:
            assert spec is not None  # checked by check_options
            records = csv_rows.CsvRecords(stream)
            route = _route(door, spec, columns, records.header, None, ids)
            with door.progress(door.title, total, "bytes") as advance:
                return _csv(door, route, records, advance)
        with door.progress(door.title, total, "bytes") as advance:
            return _ndjson(door, stream, advance, ids.of_rows)


@dataclass(frozen=True, slots=True)
class _FileIds:
    """The ids a file's rows without one get: by position, and, for the column-wise path,
    as a block prefix (None when the rows must keep the ids of an earlier release)."""

    of_rows: Callable[[int], str] | None
    prefix: str | None


def _ids(door: _Door, index: EventIdIndex) -> _FileIds:
    from flywheel.ingest import inputs

    legacy = inputs.legacy_ids(door.source)
    if legacy is not None and index.known(
            [legacy(position) for position in range(inputs.LEGACY_PROBE)]):
        door.note(f"{door.source} was ingested by an earlier release: its rows keep the ids "
                  "they got then, so nothing is stored twice (row by row, which is slower)")
        return _FileIds(legacy, None)
    return _FileIds(inputs.stable_ids(door.source), inputs.id_prefix(door.source))


@dataclass(frozen=True, slots=True)
class _Route:
    """How a file of rows is ingested: its layout, and the schema's column-wise checks
    (None when the row path must judge every row)."""

    spec: VersionSpec
    layout: Layout
    plan: FilePlan | None
    ids: Callable[[int], str] | None


def _route(door: _Door, spec: VersionSpec, columns: FileColumns, names: list[str],
           types: dict[str, Any] | None, ids: _FileIds) -> _Route:
    from flywheel.ingest import layout, tabular
    from flywheel.ingest.columnar import compile_plan

    shown = "stdin" if door.source == STDIN else door.source
    found, warnings = layout.resolve(names, spec, source=shown,
                                     time_column=columns.time_column,
                                     id_column=columns.id_column, time_now=columns.time_now,
                                     types=types)
    for warning in warnings:
        door.note(warning)
    declared = [c for c in spec.table.columns if c.name in spec.declared]
    checks = compile_plan(door.schemas.current.document(spec.key), declared)
    if isinstance(checks, str) or (ids.prefix is None and ids.of_rows is not None):
        return _Route(spec, found, None, ids.of_rows)
    ingestor = door.ingestor
    plan = tabular.FilePlan(spec=spec, plan=checks, layout=found, limits=ingestor.limits,
                            door="file", id_prefix=ids.prefix,
                            text=types is None, row_path=ingestor.row_preparer)
    return _Route(spec, found, plan, ids.of_rows)


def _parquet(door: _Door, route: _Route, parquet: Any,
             advance: Advance) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import parquet_rows, tabular

    return _rows(door, route,
                 lambda: parquet_rows.parquet_events(parquet, route.spec, route.layout, advance),
                 lambda plan: tabular.parquet_chunks(plan, parquet, tabular.CHUNK_ROWS, advance))


def _csv(door: _Door, route: _Route, records: CsvRecords,
         advance: Advance) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import csv_rows, tabular

    return _rows(door, route,
                 lambda: csv_rows.csv_events(records, route.spec, route.layout, advance),
                 lambda plan: tabular.csv_chunks(plan, records, tabular.CHUNK_ROWS, advance))


def _rows(door: _Door, route: _Route, events: Callable[[], Iterable[dict[str, Any]]],
          chunks: Callable[[FilePlan], Iterator[Any]]) -> tuple[IngestResult, Tally]:
    """A file of rows through the column-wise path, or row by row when it cannot judge them."""
    from flywheel.ingest import tabular

    if route.plan is None:
        return _whole(door, events(), route.ids)
    return _tallied(tabular.ingest_chunks(door.ingestor, route.plan, chunks(route.plan)))


def _whole(door: _Door, events: Iterable[dict[str, Any]],
           ids: Callable[[int], str] | None) -> tuple[IngestResult, Tally]:
    return _tallied(door.ingestor.ingest(events, door="file", fallback_id=ids))


def _tallied(result: IngestResult) -> tuple[IngestResult, Tally]:
    tally = Tally()
    tally.add(result, 0, None, "row")
    return result, tally


def _ndjson(door: _Door, stream: IO[bytes], advance: Advance,
            ids: Callable[[int], str] | None) -> tuple[IngestResult, Tally]:
    from flywheel.ingest import ndjson
    from flywheel.ingest.result import IngestResult

    ingestor = door.ingestor
    limit = ingestor.limits.max_event_bytes
    total, tally, shift = IngestResult(), Tally(), 0
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
        raise IngestInterrupted(
            f"interrupted; at least the first {shift:,} events were committed "
            f"({total.accepted:,} stored, {total.rejected:,} kept as bad rows)") from None
    return total, tally
