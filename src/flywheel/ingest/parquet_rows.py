"""The Parquet reader of the file door: record batches, normalised, never the whole file.

Pyarrow is imported inside the functions: the CLI imports the file door to build its options.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flywheel._core.errors import InputError
from flywheel._core.text import first_line
from flywheel.ingest.inputs import Advance, open_input
from flywheel.ingest.layout import ID, TIME, Layout

if TYPE_CHECKING:
    import pyarrow.parquet

    from flywheel.schemas.registry import VersionSpec

PARQUET_BATCH = 10_000
ENVELOPE_FIELDS = (ID, TIME)


def parquet_file(source: str) -> pyarrow.parquet.ParquetFile:
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
