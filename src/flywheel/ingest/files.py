"""Streaming file readers for the file door: NDJSON, CSV and Parquet, one chunk at a time.

Nothing here holds a whole file: NDJSON is read line by line, CSV record by record and
Parquet batch by batch, so a file of any size ingests in bounded memory. Only the standard
library is imported at module level (the CLI imports this module to build its options).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flywheel._core.errors import InputError
from flywheel._core.ids import derived_id
from flywheel._core.text import first_line
from flywheel.ingest.layout import ID, TIME, Layout

if TYPE_CHECKING:
    from flywheel.schemas.registry import VersionSpec

STDIN = "-"
CHUNK_LINES = 50_000  # as Ingestor.ingest: fewer, bigger commits (files) per file
CHUNK_BYTES = 32 * 1024 * 1024
PARQUET_BATCH = 10_000
ENVELOPE_FIELDS = (ID, TIME)
EXTRA_CELLS = "csv_extra_cells"
"""Cells beyond the header go to this envelope field, so the row is kept as a bad row."""

Advance = Callable[[int], None]
"""Progress callback: the position reached so far (bytes for NDJSON and CSV, rows for Parquet)."""


class Format(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"
    PARQUET = "parquet"


_SUFFIXES = {".ndjson": Format.NDJSON, ".jsonl": Format.NDJSON, ".json": Format.NDJSON,
             ".csv": Format.CSV, ".parquet": Format.PARQUET, ".pq": Format.PARQUET}


def detect_format(source: str, forced: Format | None = None) -> Format:
    """`forced`, else from the extension; standard input is NDJSON unless told otherwise."""
    if forced is not None:
        return forced
    if source == STDIN:
        return Format.NDJSON
    found = _SUFFIXES.get(Path(source).suffix.lower())
    if found is None:
        raise InputError(f"cannot tell the format of {source} from its extension",
                         hint="pass --format ndjson, csv or parquet")
    return found


@contextmanager
def open_input(source: str) -> Iterator[IO[bytes]]:
    """The file (or standard input for `-`) as bytes; a file that cannot be opened is an
    `InputError`."""
    if source == STDIN:
        yield sys.stdin.buffer
        return
    try:
        stream = Path(source).open("rb")  # noqa: SIM115 - closed below, after the yield
    except FileNotFoundError:
        raise InputError(f"cannot read {source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {source}: it is a folder, not a file") from None
    except PermissionError:
        raise InputError(f"cannot read {source}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def input_size(stream: IO[bytes]) -> int | None:
    """Bytes in `stream` when it is a regular file (for a progress bar), else None."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    import stat

    return info.st_size if stat.S_ISREG(info.st_mode) else None


# NDJSON ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LineChunk:
    """Consecutive non-blank lines: as received (for bad rows) and parsed."""

    raws: list[bytes]
    items: list[Any]
    lines: list[int]
    """1-based line number of each item in the input."""
    position: int
    """Bytes consumed from the start of the input, up to the end of this chunk."""


def ndjson_chunks(stream: IO[bytes], *, max_line_bytes: int, chunk_lines: int | None = None,
                  chunk_bytes: int | None = None) -> Iterator[LineChunk]:
    """Chunks of lines. A line longer than `max_line_bytes` is cut there (the rest is
    skipped, never held) and goes on as an event too large for any limit."""
    chunk_lines = chunk_lines or CHUNK_LINES
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    raws: list[bytes] = []
    lines: list[int] = []
    cut: set[int] = set()
    size = position = number = 0
    checked = False
    while True:
        line = stream.readline(max_line_bytes)
        if not line:
            break
        number += 1
        position += len(line)
        if len(line) >= max_line_bytes and not line.endswith(b"\n"):
            position += _skip_line(stream)
            cut.add(len(raws))
        body = _strip_terminator(line, first=number == 1)
        if not body.strip():
            continue
        if not checked:
            _check_first_line(body)
            checked = True
        raws.append(body)
        lines.append(number)
        size += len(body)
        if len(raws) >= chunk_lines or size >= chunk_bytes:
            yield LineChunk(raws, _decode(raws, cut), lines, position)
            raws, lines, cut, size = [], [], set(), 0
    if raws:
        yield LineChunk(raws, _decode(raws, cut), lines, position)


def _strip_terminator(line: bytes, *, first: bool) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.removeprefix(b"\xef\xbb\xbf") if first else line


def _skip_line(stream: IO[bytes]) -> int:
    skipped = 0
    while True:
        piece = stream.readline(1 << 20)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped


def _check_first_line(body: bytes) -> None:
    start = body.strip()
    if start.startswith(b"[") or start == b"{":
        shape = "a JSON array" if start.startswith(b"[") else "pretty-printed JSON"
        raise InputError(f"the input looks like {shape}, not NDJSON (one event per line)",
                         hint="convert it first, e.g. "
                         "`jq -c '.[]' events.json | flywheel ingest -`")


def _decode(raws: list[bytes], cut: set[int]) -> list[Any]:
    from flywheel.ingest.prepare import NotJson, decode_json_items

    try:
        items = decode_json_items(raws)
    except UnicodeDecodeError:
        # msgspec raises this (not DecodeError) on invalid UTF-8: parse line by line.
        items = []
        for raw in raws:
            try:
                items.extend(decode_json_items([raw]))
            except UnicodeDecodeError as exc:
                items.append(NotJson(f"not valid UTF-8: {exc.reason} at byte {exc.start}"))
    for position in cut:
        # Not NotJson: a cut line must be rejected as too large, which the size check
        # (run before any look at the content) does for any other item.
        items[position] = None
    return items


# CSV ---------------------------------------------------------------------------------------
class _Counting(io.RawIOBase):
    """Counts the bytes read through it, for progress by bytes under a text wrapper."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


class CsvRecords:
    """The records of a CSV input after its header, as the csv module splits them (both
    ingest paths read CSV through this one parser, so they agree on quoting)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._counter = _Counting(stream)
        text = io.TextIOWrapper(io.BufferedReader(self._counter), encoding="utf-8-sig",
                                errors="surrogateescape", newline="")
        self._reader = csv.reader(text)
        self.header = _csv_header(_next_record(self._reader))

    @property
    def position(self) -> int:
        """Bytes read so far."""
        return self._counter.position

    def chunks(self, size: int) -> Iterator[list[list[str]]]:
        """Lists of up to `size` non-blank records."""
        chunk: list[list[str]] = []
        while (row := _next_record(self._reader)) is not None:
            if not row:
                continue
            chunk.append(row)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def csv_events(records: CsvRecords, spec: VersionSpec, layout: Layout,
               advance: Advance | None = None) -> Iterator[dict[str, Any]]:
    """One event of schema `spec` per CSV record; the header names the properties.

    The layout's columns go to the envelope; the other cells are typed by the schema's
    columns. An empty cell is an absent property. Invalid UTF-8 is kept (escaped) so that
    the row is rejected as a bad row rather than stopping the file.
    """
    parsers = cell_parsers(spec)
    for chunk in records.chunks(1000):
        for row in chunk:
            yield csv_event(records.header, row, parsers, spec.uri, layout)
        if advance is not None:
            advance(records.position)


def _next_record(reader: Any) -> list[str] | None:
    try:
        row: list[str] = next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise InputError(f"CSV line {reader.line_num}: {exc}") from None
    return row


def _csv_header(header: list[str] | None) -> list[str]:
    if header is None:
        raise InputError("the CSV input is empty; its first line must name the columns")
    names = [name.strip() for name in header]
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as exc:
            shown = name.encode("utf-8", "surrogateescape")[exc.start:exc.start + 1]
            raise InputError(f"the CSV header is not UTF-8 text (byte 0x{shown.hex()} in "
                             f"column {len(names[:names.index(name)]) + 1})") from None
    if not all(names):
        raise InputError("the CSV header has an empty column name",
                         hint="every column needs a name: the property it fills")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"the CSV header names {', '.join(twice)} more than once")
    return names


def csv_event(header: list[str], row: list[str], parsers: dict[str, Callable[[str], Any]],
              uri: str, layout: Layout) -> dict[str, Any]:
    """The event of one CSV record (the row path)."""
    event: dict[str, Any] = {"schema": uri}
    data: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=False):
        if cell == "":
            continue
        if name == layout.time_column:
            event[TIME] = cell
        elif name == layout.id_column:
            event[ID] = cell
        if layout.is_data(name):
            parse = parsers.get(name)
            data[name] = parse(cell) if parse is not None else cell
    event["data"] = data
    extra = row[len(header):]
    if any(extra):
        event[EXTRA_CELLS] = extra
    return event


def cell_parsers(spec: VersionSpec) -> dict[str, Callable[[str], Any]]:
    """For each declared property that is not text, how to read it from a CSV cell.

    A cell that does not parse is left as text, so validation rejects it with the value."""
    import pyarrow as pa

    from flywheel.schemas.columns import Kind

    parsers: dict[str, Callable[[str], Any]] = {}
    for column in spec.table.columns:
        if column.name not in spec.declared:
            continue
        kind, arrow_type = column.kind, column.arrow_type
        if kind is Kind.JSON or pa.types.is_list(arrow_type) or pa.types.is_struct(arrow_type):
            parsers[column.name] = _json_cell
        elif pa.types.is_boolean(arrow_type):
            parsers[column.name] = _boolean_cell
        elif pa.types.is_integer(arrow_type):
            parsers[column.name] = _integer_cell
        elif pa.types.is_floating(arrow_type):
            parsers[column.name] = _number_cell
    return parsers


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _boolean_cell(text: str) -> Any:
    word = text.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else text


def _integer_cell(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else text


def _number_cell(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _json_cell(text: str) -> Any:
    # Only objects and arrays: a scalar cell of a mixed-type property stays text, as written.
    if not text.lstrip().startswith(("{", "[")):
        return text
    import msgspec

    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeEncodeError):
        return text


# Parquet -------------------------------------------------------------------------------------
def parquet_file(source: str) -> Any:
    """A `pyarrow.parquet.ParquetFile`; a file that is not Parquet is an `InputError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open_input(source):  # the same clear errors as other formats for a missing file
        pass
    try:
        return pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read {source} as Parquet: {first_line(exc)}") from None


def parquet_batches(parquet: Any, size: int | None = None) -> Iterator[Any]:
    """The file's record batches of `size` rows, each normalised; a batch that cannot be
    read is an `InputError` naming the rows before it (which were ingested)."""
    import pyarrow as pa

    done = 0
    batches = parquet.iter_batches(batch_size=size or PARQUET_BATCH)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            table = normalise(pa.Table.from_batches([batch]))
        except (pa.ArrowException, OSError, ValueError, OverflowError) as exc:
            raise InputError(f"cannot read Parquet rows after row {done}: {first_line(exc)}",
                             hint=f"the {done} rows before it were ingested") from None
        yield table
        done += batch.num_rows


def parquet_events(parquet: Any, spec: VersionSpec | None, layout: Layout | None = None,
                   advance: Advance | None = None) -> Iterator[Any]:
    """Events from Parquet rows: each row is the data of schema `spec`, or, without
    `spec`, an envelope with `schema` and `data` columns (data as a struct or JSON text)."""
    names = list(parquet.schema_arrow.names)
    if spec is None:
        _check_envelope_columns(names)
    done = 0
    for table in parquet_batches(parquet):
        if spec is None:
            yield from (_from_envelope(row) for row in table.to_pylist())
        else:
            assert layout is not None
            yield from table_events(table, spec.uri, layout)
        done += table.num_rows
        if advance is not None:
            advance(done)


def normalise(table: Any) -> Any:
    """What both ingest paths read from a Parquet batch: dictionaries decoded, text as
    `string`, timestamps in microseconds (floored) and UTC, naive ones read as UTC.

    A timestamp outside the years 0001-9999 has no Python value; it is replaced by its
    text (a string column then), which validation rejects with the value."""
    import pyarrow as pa

    for position, field in enumerate(table.schema):
        column = table.column(position)
        kind = field.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_large_string(kind) or _is_string_view(kind):
            column = column.cast(pa.string())
        elif pa.types.is_timestamp(kind):
            column = _utc_micros(column, kind)
        if column is not table.column(position):
            table = table.set_column(position, field.name, column)
    return table


def _is_string_view(kind: Any) -> bool:
    import pyarrow as pa

    return bool(getattr(pa.types, "is_string_view", lambda _: False)(kind))


def _utc_micros(column: Any, kind: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    from flywheel.ingest.times import MAX_TIME_US, MIN_TIME_US
    from flywheel.schemas.columns import TIMESTAMP

    raw = column.cast(pa.int64())
    if kind.unit == "ns":  # int64 nanoseconds span 1677-2262: always within the years
        quotient = pc.divide(raw, 1000)  # truncates toward zero
        below = pc.less(pc.subtract(raw, pc.multiply(quotient, 1000)), 0)
        # Floor, not truncation: the instant before, as cutting digits of the text does.
        return pc.subtract(quotient, below.cast(pa.int64())).cast(TIMESTAMP)
    factor = {"s": 1_000_000, "ms": 1000, "us": 1}[kind.unit]
    low, high = -(-MIN_TIME_US // factor), MAX_TIME_US // factor
    outside = pc.or_(pc.less(raw, low), pc.greater(raw, high))
    if pc.any(outside).as_py():
        return pc.binary_join_element_wise(
            raw.cast(pa.string()),
            pa.scalar(f" {kind.unit} since 1970, outside the years 0001 to 9999"), "")
    return pc.multiply(raw, factor).cast(TIMESTAMP)


def _check_envelope_columns(names: list[str]) -> None:
    if not {"schema", "data"}.issubset(names):
        raise InputError(
            "this Parquet file has no 'schema' and 'data' columns",
            hint="pass --schema iglu:... to make each row the data of one event")
    others = sorted(set(names) - {"schema", "data", *ENVELOPE_FIELDS})
    if others:
        raise InputError(
            f"this Parquet file has columns {', '.join(others)} beside schema and data",
            hint="only schema, data, event_id and event_time may be columns of an envelope "
            "file; or pass --schema to make each row the data")


def _from_envelope(row: dict[str, Any]) -> dict[str, Any]:
    event = {key: plain(value) for key, value in row.items() if value is not None}
    data = event.get("data")
    if isinstance(data, str):
        import msgspec

        # Text that is not JSON stays text: the event is rejected, and kept, as a bad envelope.
        with contextlib.suppress(msgspec.DecodeError):
            event["data"] = msgspec.json.decode(data)
    elif isinstance(data, dict):
        event["data"] = {k: v for k, v in data.items() if v is not None}
    return event


def table_events(table: Any, uri: str, layout: Layout) -> Iterator[dict[str, Any]]:
    """The events of a normalised Parquet table, row by row (the row path)."""
    for row in table.to_pylist():
        yield _from_data(row, uri, layout)


def _from_data(row: dict[str, Any], uri: str, layout: Layout) -> dict[str, Any]:
    event: dict[str, Any] = {"schema": uri}
    data: dict[str, Any] = {}
    for key, value in row.items():
        if value is None:
            continue
        if key == layout.time_column:
            event[TIME] = plain(value)
        elif key == layout.id_column:
            event[ID] = str(value) if type(value) is int else value
        if layout.is_data(key):
            data[key] = plain(value)
    event["data"] = data
    return event


def plain(value: Any) -> Any:
    """Arrow's Python values as JSON values: times as RFC 3339 text, decimals as numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def id_prefix(source: str) -> str | None:
    """The prefix of the ids of events a file gives without one: stable for the same file
    (path, size and modification time), so that sending the file again stores nothing
    twice. Standard input has no identity: its events get ids from the log.

    An id is the prefix and the row's position in 12 digits, the form of the log's own
    id blocks, so that the id index keeps a run of positions in one row, not one per id."""
    if source == STDIN:
        return None
    path = Path(source).resolve()
    stat = path.stat()
    digest = hashlib.sha256(f"file|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 3]
    return f"{digest[0:8]}-{digest[8:12]}-4{digest[13:16]}-{variant}{digest[17:20]}-"


def stable_ids(source: str) -> Callable[[int], str] | None:
    """The id of the event at each position of a file (see `id_prefix`)."""
    prefix = id_prefix(source)
    if prefix is None:
        return None
    return lambda position: f"{prefix}{position:012d}"


LEGACY_PROBE = 64
"""How many positions `legacy_ids` probes: a file sent before either had ids of its own in
all of its first rows, or holds a derived id among them."""


def legacy_ids(source: str) -> Callable[[int], str] | None:
    """The ids an earlier release derived for a file's rows without one: a uuid5 of the
    file's identity (path, size, modification time) and the row's position. A file whose
    rows the log already holds under these ids keeps them when it is sent again, so that
    nothing it holds is stored twice."""
    if source == STDIN:
        return None
    path = Path(source).resolve()
    stat = path.stat()
    identity = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    return lambda position: derived_id("file", identity, str(position))
