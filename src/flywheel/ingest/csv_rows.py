"""The CSV reader of the file door: records after the header, typed by the schema's columns.

Records are read one at a time through the csv module, so a file of any size ingests in
bounded memory.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from flywheel._core.errors import InputError
from flywheel.ingest.inputs import Advance
from flywheel.ingest.layout import ID, TIME, Layout

if TYPE_CHECKING:
    from flywheel.schemas.registry import VersionSpec

EXTRA_CELLS = "csv_extra_cells"
"""Cells beyond the header go to this envelope field, so the row is kept as a bad row."""


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
            parsers[column.name] = boolean_cell
        elif pa.types.is_integer(arrow_type):
            parsers[column.name] = integer_cell
        elif pa.types.is_floating(arrow_type):
            parsers[column.name] = number_cell
    return parsers


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def boolean_cell(text: str) -> Any:
    word = text.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else text


def integer_cell(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else text


def number_cell(text: str) -> Any:
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
