"""Files of rows (Parquet, CSV) into the log a chunk at a time, column-wise.

Each chunk is checked by column (`columnar`); the rows that cannot be proven valid that
way go through the row path (`Preparer`), which rejects them with the reason and raw
input it would give for any row, or accepts them. Both parts are merged back into file
order, so that the first copy of a repeated id is the one kept, as on the row path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.ingest import csv_rows, parquet_rows, times
from flywheel.ingest.columnar import Plan, check_text, check_typed
from flywheel.ingest.layout import Layout
from flywheel.ingest.prepare import Limits, Prepared, Preparer
from flywheel.log.badrows import BadRow
from flywheel.schemas.columns import EXTRA_COLUMN, TIMESTAMP, TRACKER_FIELDS
from flywheel.schemas.registry import VersionSpec

if TYPE_CHECKING:
    from flywheel.ingest.ingestor import Ingestor
    from flywheel.ingest.result import IngestResult

_encode = msgspec.json.Encoder().encode
MAX_EVENT_ID = 4096
_ANY_VALUE = 26
"""Bytes a number, boolean, date or time takes in JSON at most (with quotes)."""
_TIME_TEXT = 34
_UNBOUNDED = 1 << 40


@dataclass(slots=True, kw_only=True)
class Chunk:
    """One chunk's columns, by file column name, and what is known about its rows."""

    columns: dict[str, pa.Array]
    rows: int
    shift: int
    """Position of the chunk's first row in the file."""
    suspect: list[pa.Array] = field(default_factory=list)
    """Masks of rows the row path must judge whatever the checks say."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FilePlan:
    """What one file is ingested as."""

    spec: VersionSpec
    plan: Plan
    layout: Layout
    limits: Limits
    door: str
    id_prefix: str | None
    text: bool
    """CSV: every column is text, cells are read by the row path's cell parsers."""
    row_path: Callable[[Callable[[int], str | None] | None], Preparer]


def prepare(file: FilePlan, chunk: Chunk, now_us: int,
            row_events: Callable[[list[int]], list[Any]]) -> Prepared:
    """The chunk's accepted rows as one log table and its rejected rows as bad rows (at
    positions within the chunk). `row_events(positions)` builds the row path's events."""
    table, proven = _columnar(file, chunk, now_us)
    suspects = [i for i, ok in enumerate(proven.to_pylist()) if not ok]
    if not suspects:
        return _prepared(file, table, [])
    fallback = _fallback_ids(file, chunk)
    preparer = file.row_path(None if fallback is None else
                             (lambda k: fallback(suspects[k])))
    judged = preparer.prepare(row_events(suspects), None, now_us, file.door)
    bad = [_moved(b, suspects[b.index]) for b in judged.bad]
    rejected = {b.index for b in bad}
    accepted = [i for i in suspects if i not in rejected]
    good = table.filter(proven)
    if accepted:
        (_, row_table), = judged.tables.values()
        positions = pa.concat_arrays([
            pc.indices_nonzero(proven).cast(pa.int64()), pa.array(accepted, pa.int64())])
        merged = pa.concat_tables([good, row_table.cast(good.schema)])
        good = merged.take(pc.sort_indices(positions))
    return _prepared(file, good, bad)


def _prepared(file: FilePlan, table: pa.Table, bad: list[BadRow]) -> Prepared:
    prepared = Prepared(bad=bad, accepted_positions=table.num_rows)
    if table.num_rows:
        prepared.tables[file.spec.table.ref] = (file.spec.table.arrow_schema, table)
    return prepared


def _moved(row: BadRow, position: int) -> BadRow:
    row.index = position
    return row


def _fallback_ids(file: FilePlan, chunk: Chunk) -> Callable[[int], str] | None:
    prefix = file.id_prefix
    if prefix is None:
        return None
    return lambda i: f"{prefix}{chunk.shift + i:012d}"


# The column-wise part ------------------------------------------------------------------------
def _columnar(file: FilePlan, chunk: Chunk, now_us: int) -> tuple[pa.Table, pa.Array]:
    """Every row of the chunk as the log would store it, and the rows proven valid."""
    spec, layout, n = file.spec, file.layout, chunk.rows
    proven = pa.array([True] * n, pa.bool_())
    for mask in chunk.suspect:
        proven = pc.and_(proven, pc.invert(mask))
    values: dict[str, pa.Array] = {}
    parsers = csv_rows.cell_parsers(spec) if file.text else {}
    for name, rule in file.plan.rules.items():
        column = chunk.columns.get(name)
        if column is None or not layout.is_data(name):
            continue
        checked = (check_text(rule, column, parsers.get(name)) if file.text
                   else check_typed(rule, column, parquet_rows.plain))
        proven = pc.and_(proven, checked.valid)
        values[name] = checked.values
    for name in file.plan.required:
        column = chunk.columns.get(name)
        if column is None or not layout.is_data(name):
            return _nothing(spec, n), pa.array([False] * n, pa.bool_())
        proven = pc.and_(proven, pc.is_valid(column))
    undeclared = [name for name in chunk.columns
                  if layout.is_data(name) and name not in spec.declared]
    for name in undeclared if file.plan.closed else []:
        proven = pc.and_(proven, pc.is_null(chunk.columns[name]))
    event_id, ok_id = _event_ids(file, chunk)
    event_time, ok_time = _event_times(file, chunk, now_us)
    proven = pc.and_(pc.and_(proven, ok_id), pc.and_(ok_time, _small_enough(file, chunk)))
    table = pa.table({
        "event_id": event_id,
        "schema": pa.array([spec.uri] * n, pa.string()),
        "event_time": event_time,
        "ingested_at": pa.array([now_us] * n, pa.int64()).cast(TIMESTAMP),
        "source": pa.array([file.door] * n, pa.string()),
        "event_date": event_time.cast(pa.date32()),
        **{f.name: pa.nulls(n, f.type) for f in TRACKER_FIELDS},
        **{c.name: values.get(c.name, pa.nulls(n, c.arrow_type)) for c in spec.table.columns},
        **({EXTRA_COLUMN: _extra(file, chunk, undeclared)} if spec.table.with_extra else {}),
    })
    schema = spec.table.arrow_schema
    return table.cast(schema.set(0, schema.field(0).with_nullable(True))), proven


def _nothing(spec: VersionSpec, n: int) -> pa.Table:
    schema = spec.table.arrow_schema
    return pa.table({f.name: pa.nulls(n, f.type) for f in schema},
                    schema=schema.set(0, schema.field(0).with_nullable(True)))


def _event_ids(file: FilePlan, chunk: Chunk) -> tuple[pa.Array, pa.Array]:
    n = chunk.rows
    name = file.layout.id_column
    given = chunk.columns.get(name) if name is not None else None
    if given is None:
        given = pa.nulls(n, pa.string())
    elif not pa.types.is_string(given.type):
        given = given.cast(pa.string())  # an integer id is its decimal text, as str(int)
    length = pc.utf8_length(given)
    ok = pc.fill_null(pc.and_(pc.greater(length, 0), pc.less_equal(length, MAX_EVENT_ID)),
                      True)
    prefix = file.id_prefix
    if prefix is not None and given.null_count:
        counters = pa.array(range(chunk.shift, chunk.shift + n), pa.int64()).cast(pa.string())
        derived = pc.binary_join_element_wise(prefix, pc.utf8_lpad(counters, 12, "0"), "")
        given = pc.coalesce(given, derived)
    return given, ok


def _event_times(file: FilePlan, chunk: Chunk, now_us: int) -> tuple[pa.Array, pa.Array]:
    n = chunk.rows
    name = file.layout.time_column
    given = chunk.columns.get(name) if name is not None else None
    ok = pa.array([True] * n, pa.bool_())
    if given is None:
        parsed = pa.nulls(n, TIMESTAMP)
    elif pa.types.is_timestamp(given.type):
        parsed = given
    elif pa.types.is_string(given.type):
        parsed, problems = times.parse(given, TIMESTAMP)
        if problems:
            flags = [True] * n
            for i, _ in problems:
                flags[i] = False
            ok = pa.array(flags, pa.bool_())
    else:
        return pa.nulls(n, TIMESTAMP), pa.array([False] * n, pa.bool_())
    parsed = pc.fill_null(parsed, pa.scalar(now_us, TIMESTAMP))
    latest = pa.scalar(now_us + file.limits.max_future_us, TIMESTAMP)
    return parsed, pc.and_(ok, pc.less_equal(parsed, latest))


def _small_enough(file: FilePlan, chunk: Chunk) -> pa.Array:
    """Rows surely within the size limit (as JSON): a bound on each value's encoding, a
    rough one first (six bytes a byte) and, when that is not enough, one that counts the
    characters JSON escapes."""
    limit = file.limits.max_event_bytes
    base = len(_encode({"schema": file.spec.uri, "data": {}})) + 40
    for precise in (False, True):
        parts = [_value_bound(name, column, file.text, precise)
                 for name, column in chunk.columns.items()]
        if base + sum(int(pc.max(p).as_py() or 0) for p in parts) <= limit:
            return pa.array([True] * chunk.rows, pa.bool_())
    total = pa.array([base] * chunk.rows, pa.int64())
    for part in parts:
        total = pc.add(total, part)
    return pc.less_equal(total, pa.scalar(limit, pa.int64()))


def _value_bound(name: str, column: pa.Array, text: bool, precise: bool) -> pa.Array:
    key = 6 * len(name.encode()) + 4
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_primitive(kind)):
        # Nested or binary values have no cheap bound: the row path measures them.
        size = pa.array([_UNBOUNDED] * len(column), pa.int64())
    elif pa.types.is_string(kind):
        size = pc.binary_length(column).cast(pa.int64())
        if precise:  # msgspec escapes quotes and backslashes (2 bytes), controls (up to 6)
            for pattern, extra in (('"', 1), (r"\\", 1), (r"[\x00-\x1f]", 5)):
                counted = pc.count_substring_regex(column, pattern).cast(pa.int64())
                size = pc.add(size, pc.multiply(counted, pa.scalar(extra, pa.int64())))
        else:
            size = pc.multiply(size, pa.scalar(6, pa.int64()))
        size = pc.add(size, pa.scalar(2, pa.int64()))
        if text:  # a cell may be read as a number whose JSON is longer than its text
            size = pc.max_element_wise(size, pa.scalar(_ANY_VALUE, pa.int64()))
    else:
        width = _TIME_TEXT if pa.types.is_timestamp(kind) else _ANY_VALUE
        size = pa.array([width] * len(column), pa.int64())
    zero = pa.scalar(0, pa.int64())
    return pc.fill_null(pc.if_else(pc.is_valid(column),
                                   pc.add(size, pa.scalar(key, pa.int64())), zero), zero)


def _extra(file: FilePlan, chunk: Chunk, undeclared: list[str]) -> pa.Array:
    """`_extra` as the row path writes it, for the rows of an open schema that carry
    undeclared columns (computed in Python for those rows only)."""
    n = chunk.rows
    if file.plan.closed or not undeclared or not file.spec.allows_extra:
        return pa.nulls(n, pa.string())
    carrying = pc.is_valid(chunk.columns[undeclared[0]])
    for name in undeclared[1:]:
        carrying = pc.or_(carrying, pc.is_valid(chunk.columns[name]))
    rows = pc.indices_nonzero(carrying)
    if not len(rows):
        return pa.nulls(n, pa.string())
    picked = pa.table({name: pc.take(chunk.columns[name], rows) for name in undeclared})
    plain: Callable[[Any], Any] = _same if file.text else parquet_rows.plain
    texts = [_encode({k: plain(v) for k, v in row.items() if v is not None}).decode()
             for row in picked.to_pylist()]
    out: list[str | None] = [None] * n
    for position, text in zip(rows.to_pylist(), texts, strict=True):
        out[position] = text
    return pa.array(out, pa.string())


# Readers ---------------------------------------------------------------------------------
def parquet_chunks(file: FilePlan, parquet: Any, size: int,
                   advance: Callable[[int], None] | None = None,
                   ) -> Iterator[tuple[Chunk, Callable[[list[int]], list[Any]]]]:
    """Chunks of a Parquet file, each with the function that makes its row-path events."""
    shift = 0
    for table in parquet_rows.parquet_batches(parquet, size):
        chunk = Chunk(columns={name: table.column(name).combine_chunks()
                               for name in table.column_names},
                      rows=table.num_rows, shift=shift)

        def events(positions: list[int], table: pa.Table = table) -> list[Any]:
            picked = table.take(pa.array(positions, pa.int64()))
            return list(parquet_rows.table_events(picked, file.spec.uri, file.layout))

        yield chunk, events
        shift += table.num_rows
        if advance is not None:
            advance(shift)


def csv_chunks(file: FilePlan, records: csv_rows.CsvRecords, size: int,
               advance: Callable[[int], None] | None = None,
               ) -> Iterator[tuple[Chunk, Callable[[list[int]], list[Any]]]]:
    """Chunks of CSV records, each as text columns (null for an empty cell)."""
    header = records.header
    parsers = csv_rows.cell_parsers(file.spec)
    shift = 0
    for rows in records.chunks(size):
        chunk = _text_chunk(header, rows, shift)

        def events(positions: list[int], rows: list[list[str]] = rows) -> list[Any]:
            return [csv_rows.csv_event(header, rows[i], parsers, file.spec.uri, file.layout)
                    for i in positions]

        yield chunk, events
        shift += len(rows)
        if advance is not None:
            advance(records.position)


def _text_chunk(header: list[str], rows: list[list[str]], shift: int) -> Chunk:
    width = len(header)
    odd = [i for i, row in enumerate(rows) if len(row) != width]
    suspect: list[int] = []
    if odd:
        rows = list(rows)
        for i in odd:
            row = rows[i]
            if any(row[width:]):  # cells beyond the header: a bad row, on the row path
                suspect.append(i)
            rows[i] = (row + [""] * width)[:width]
    cells = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    columns: dict[str, pa.Array] = {}
    for name, values in zip(header, cells, strict=True):
        column, unreadable = _text_column(values)
        columns[name] = column
        suspect.extend(unreadable)
    masks = [_mask(len(rows), suspect)] if suspect else []
    return Chunk(columns=columns, rows=len(rows), shift=shift, suspect=masks)


def _text_column(values: tuple[str, ...]) -> tuple[pa.Array, list[int]]:
    """Cells as Arrow text, empty ones null; cells that are not UTF-8 (escaped by the
    reader) are left to the row path, which keeps them in a bad row."""
    unreadable: list[int] = []
    try:
        column = pa.array(values, pa.string())
    except (UnicodeEncodeError, pa.ArrowInvalid):
        unreadable = [i for i, v in enumerate(values) if not _utf8(v)]
        dropped = set(unreadable)
        column = pa.array(["" if i in dropped else v for i, v in enumerate(values)],
                          pa.string())
    empty = pc.equal(column, "")
    return pc.if_else(empty, pa.scalar(None, pa.string()), column), unreadable


def _same(value: Any) -> Any:
    return value


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mask(length: int, positions: list[int]) -> pa.Array:
    flags = [False] * length
    for i in positions:
        flags[i] = True
    return pa.array(flags, pa.bool_())


# The whole file ------------------------------------------------------------------------------
CHUNK_ROWS = 100_000


def ingest_chunks(ingestor: Ingestor, file: FilePlan,
                  chunks: Iterator[tuple[Chunk, Callable[[list[int]], list[Any]]]],
                  ) -> IngestResult:
    """Prepare and commit every chunk; returns the `IngestResult` of the file."""
    from flywheel._core.clock import utc_now_us

    def prepared() -> Iterator[tuple[Prepared, int]]:
        for chunk, events in chunks:
            now = utc_now_us()
            yield prepare(file, chunk, now, events), now

    return ingestor.ingest_prepared(prepared(), door=file.door)
