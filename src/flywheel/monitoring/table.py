"""A monitor's results table: `MonitorResult` rows as Arrow, and back.

The columns are the fields of `MonitorResult`, in order; times are UTC microseconds. The
table holds only what the inputs determine (no evaluation time), so a replay writes the
same rows and the table's content hash is the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pyarrow as pa

from flywheel.monitoring.results import MonitorResult
from flywheel.monitoring.windows import to_utc

__all__ = ["RESULT_SCHEMA", "results_from_arrow", "results_to_arrow", "sort_key"]

_TIME = pa.timestamp("us", tz="UTC")
RESULT_SCHEMA = pa.schema([
    pa.field("monitor", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("window_start", _TIME, nullable=False),
    pa.field("window_end", _TIME, nullable=False),
    pa.field("subject", pa.string(), nullable=False),
    pa.field("statistic", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("threshold", pa.float64()),
    pa.field("status", pa.string(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),
    pa.field("member", pa.string()),
    pa.field("model_version", pa.int64()),
    pa.field("estimated", pa.bool_(), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
])
_FIELDS = [f.name for f in dataclasses.fields(MonitorResult)]
assert RESULT_SCHEMA.names == _FIELDS, "RESULT_SCHEMA must follow MonitorResult"


def results_to_arrow(results: Iterable[MonitorResult]) -> pa.Table:
    rows = list(results)
    columns = {name: pa.array([getattr(r, name) for r in rows], RESULT_SCHEMA.field(name).type)
               for name in _FIELDS}
    return pa.table(columns, schema=RESULT_SCHEMA)


def results_from_arrow(table: pa.Table) -> list[MonitorResult]:
    """Rows of a results table, in (window, subject, statistic, member) order."""
    present = [name for name in _FIELDS if name in table.column_names]
    columns = {name: table.column(name).to_pylist() for name in present}
    found = []
    for i in range(table.num_rows):
        values = {name: columns[name][i] for name in present}
        values["window_start"] = to_utc(values["window_start"])
        values["window_end"] = to_utc(values["window_end"])
        found.append(MonitorResult(**values))
    return sorted(found, key=sort_key)


def sort_key(result: MonitorResult) -> tuple[object, ...]:
    return (result.window_start, result.subject, result.statistic, result.member or "",
            result.model_version or 0, result.estimated)


