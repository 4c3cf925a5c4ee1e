"""Streaming file readers for the file door: NDJSON, CSV and Parquet, one chunk at a time.

Nothing here holds a whole file: NDJSON is read line by line, CSV record by record and
Parquet batch by batch, so a file of any size ingests in bounded memory. Only the standard
library is imported at module level (the CLI imports this module to build its options).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
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

if TYPE_CHECKING:
    from flywheel.schemas.registry import VersionSpec

STDIN = "-"
CHUNK_LINES = 50_000  # as Ingestor.ingest: fewer, bigger commits (files) per file
CHUNK_BYTES = 32 * 1024 * 1024
PARQUET_BATCH = 10_000
ENVELOPE_FIELDS = ("event_id", "event_time")
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


def csv_events(stream: IO[bytes], spec: VersionSpec,
               advance: Advance | None = None) -> Iterator[dict[str, Any]]:
    """One event of schema `spec` per CSV record; the header names the properties.

    Columns `event_id` and `event_time` go to the envelope; the other cells are typed by
    the schema's columns. An empty cell is an absent property. Invalid UTF-8 is kept
    (escaped) so that the row is rejected as a bad row rather than stopping the file.
    """
    counter = _Counting(stream)
    text = io.TextIOWrapper(io.BufferedReader(counter), encoding="utf-8-sig",
                            errors="surrogateescape", newline="")
    reader = csv.reader(text)
    header = _csv_header(_next_record(reader))
    parsers = cell_parsers(spec)
    count = 0
    while (row := _next_record(reader)) is not None:
        if not row:
            continue
        yield _csv_event(header, row, parsers, spec.uri)
        count += 1
        if advance is not None and count % 1000 == 0:
            advance(counter.position)
    if advance is not None:
        advance(counter.position)


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
    if not all(names):
        raise InputError("the CSV header has an empty column name",
                         hint="every column needs a name: the property it fills")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"the CSV header names {', '.join(twice)} more than once")
    return names


def _csv_event(header: list[str], row: list[str], parsers: dict[str, Callable[[str], Any]],
               uri: str) -> dict[str, Any]:
    event: dict[str, Any] = {"schema": uri}
    data: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=False):
        if cell == "":
            continue
        if name in ENVELOPE_FIELDS:
            event[name] = cell
        else:
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
        raise InputError(f"cannot read {source} as Parquet: {_first_line(exc)}") from None


def parquet_events(parquet: Any, spec: VersionSpec | None,
                   advance: Advance | None = None) -> Iterator[dict[str, Any]]:
    """Events from Parquet rows: each row is the data of schema `spec`, or, without
    `spec`, an envelope with `schema` and `data` columns (data as a struct or JSON text)."""
    import pyarrow as pa

    names = list(parquet.schema_arrow.names)
    if spec is None:
        _check_envelope_columns(names)
    done = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
            for row in batch.to_pylist():
                yield _from_envelope(row) if spec is None else _from_data(row, spec.uri)
            done += batch.num_rows
            if advance is not None:
                advance(done)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet rows after row {done}: {_first_line(exc)}",
                         hint=f"the {done} rows before it were ingested") from None


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
    event = {key: _plain(value) for key, value in row.items() if value is not None}
    data = event.get("data")
    if isinstance(data, str):
        import msgspec

        # Text that is not JSON stays text: the event is rejected, and kept, as a bad envelope.
        with contextlib.suppress(msgspec.DecodeError):
            event["data"] = msgspec.json.decode(data)
    elif isinstance(data, dict):
        event["data"] = {k: v for k, v in data.items() if v is not None}
    return event


def _from_data(row: dict[str, Any], uri: str) -> dict[str, Any]:
    event: dict[str, Any] = {"schema": uri}
    data: dict[str, Any] = {}
    for key, value in row.items():
        if value is None:
            continue
        if key in ENVELOPE_FIELDS:
            event[key] = _plain(value)
        else:
            data[key] = _plain(value)
    event["data"] = data
    return event


def _plain(value: Any) -> Any:
    """Arrow's Python values as JSON values: times as RFC 3339 text, decimals as numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def stable_ids(source: str) -> Callable[[int], str] | None:
    """Ids for events a file gives without one, stable for the same file (path, size and
    modification time), so that sending the file again stores nothing twice. Standard
    input has no identity: its events get ids from the log."""
    if source == STDIN:
        return None
    path = Path(source).resolve()
    stat = path.stat()
    identity = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    return lambda position: derived_id("file", identity, str(position))
