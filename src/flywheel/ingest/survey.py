"""What `flywheel schemas infer` needs to know about a file's columns: a type for each, read
as ingestion will read it, and whether any cell is empty."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
import pyarrow as pa

from flywheel.ingest import csv_rows, parquet_rows, times
from flywheel.schemas.columns import TIMESTAMP
from flywheel.schemas.infer import ColumnFacts
from flywheel.schemas.validation import DRAFT7

_INT64 = (-(2**63), 2**63 - 1)
_DISTINCT = 100_000
"""Distinct cells remembered per CSV column; beyond them each cell is read again."""


def survey_parquet(parquet: Any) -> list[ColumnFacts]:
    """Facts from a Parquet file's types, and a pass over its nulls."""
    arrow = parquet.schema_arrow
    nulls = dict.fromkeys(arrow.names, 0)
    rows = 0
    for table in parquet_rows.parquet_batches(parquet, 100_000):
        rows += table.num_rows
        for name in arrow.names:
            nulls[name] += table.column(name).null_count
    facts = []
    for f in arrow:
        kind, notes, unsupported = _parquet_kind(f.type)
        empty = rows == 0 or nulls[f.name] == rows
        facts.append(ColumnFacts(name=f.name, kind=None if empty and unsupported is None
                                 else kind, nullable=nulls[f.name] > 0, notes=notes,
                                 unsupported=unsupported))
    return facts


def _parquet_kind(kind: pa.DataType) -> tuple[str | None, list[str], str | None]:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    t = pa.types
    if t.is_boolean(kind):
        return "boolean", [], None
    if t.is_uint64(kind):
        return "integer", ["values above 9223372036854775807 are rejected: the log stores "
                           "64-bit signed integers"], None
    if t.is_integer(kind):
        return "integer", [], None
    if t.is_float32(kind) or t.is_float64(kind):
        return "number", [], None
    if t.is_decimal(kind):
        return "number", [f"{kind} values are stored as 64-bit floats (about 15 significant "
                          "digits)"], None
    if t.is_string(kind) or t.is_large_string(kind) or str(kind) == "string_view":
        return "string", [], None
    if t.is_timestamp(kind):
        notes = [] if kind.tz else ["timestamps without a time zone are read as UTC"]
        if kind.unit == "ns":
            notes.append("nanoseconds are cut to microseconds, the log's resolution")
        return "date-time", notes, None
    if t.is_date(kind):
        return "date", [], None
    if t.is_time(kind):
        return "string", ["times of day are stored as text (HH:MM:SS)"], None
    if t.is_list(kind) or t.is_large_list(kind):
        return "array", ["lists are stored as JSON text"], None
    if t.is_struct(kind):
        return "object", ["structs are stored as JSON text"], None
    if t.is_null(kind):
        return None, [], None
    return None, [], f"holds {kind} values"


def survey_csv(records: csv_rows.CsvRecords) -> list[ColumnFacts]:
    """Facts from every cell of a CSV input, each read by ingestion's own cell parsers."""
    header = records.header
    candidates = [set(_CHECKS) for _ in header]
    empty = [False] * len(header)
    present = [False] * len(header)
    seen: list[set[str]] = [set() for _ in header]
    for chunk in records.chunks(50_000):
        for row in chunk:
            for i in range(len(header)):
                cell = row[i] if i < len(row) else ""
                if cell == "":
                    empty[i] = True
                    continue
                present[i] = True
                if cell in seen[i] or not candidates[i]:
                    continue
                if len(seen[i]) < _DISTINCT:
                    seen[i].add(cell)
                candidates[i] = {k for k in candidates[i] if _CHECKS[k](cell)}
    facts = []
    for i, name in enumerate(header):
        kind = next((k for k in _CHECKS if k in candidates[i]), "string")
        facts.append(ColumnFacts(name=name, kind=kind if present[i] else None,
                                 nullable=empty[i]))
    return facts


def _is_integer(cell: str) -> bool:
    value = csv_rows.integer_cell(cell)
    return type(value) is int and _INT64[0] <= value <= _INT64[1]


def _is_number(cell: str) -> bool:
    return type(csv_rows.number_cell(cell)) is float


def _is_boolean(cell: str) -> bool:
    return type(csv_rows.boolean_cell(cell)) is bool


def _format_check(fmt: str, target: pa.DataType) -> Callable[[str], bool]:
    validate = fastjsonschema.compile({"$schema": DRAFT7, "type": "string", "format": fmt})

    def check(cell: str) -> bool:
        try:
            validate(cell)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return not times.parse(pa.array([cell], pa.string()), target)[1]

    return check


_CHECKS: dict[str, Callable[[str], bool]] = {
    "integer": _is_integer, "number": _is_number, "boolean": _is_boolean,
    "date-time": _format_check("date-time", TIMESTAMP),
    "date": _format_check("date", pa.date32()),
}
