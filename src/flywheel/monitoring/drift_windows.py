"""A drift monitor over windows: each window's rows against the reference, column by column.

The reference:
- `champion` (a deployment's default): the training set of the model version that answered
  the window's predictions. Each prediction names its model version in the log, so the
  reference of a window is exact and the same on every replay, even across a promotion: a
  window served by two versions gives one set of rows per version. The predictions
  themselves are compared too (column `prediction`: the positive class's probability, or
  the value), against the version's own predictions on its training set.
- a fixed window `{start, end}`: the target's rows in that time range.

Rows per window: one per column (statistic, value, threshold; for `ks` and `chi2` the value
is the p-value, drifted below the threshold, for the distances the distance, drifted at or
above it; `detail` holds the binned distributions, JSON `{"bins", "reference", "current"}`,
for the report's plots, and the test's own statistic) and one
`dataset` row, the share of drifted columns against the monitor's `share`. A window with
fewer than `min_rows` rows is `unknown`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from flywheel.monitoring.drift import (
    P_VALUE_STATISTICS,
    ColumnDrift,
    ColumnSource,
    ColumnTest,
    DriftReport,
    drift_report,
    duckdb_source,
)
from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.inputs import MonitorInput
from flywheel.monitoring.results import MonitorResult, Status
from flywheel.monitoring.spec import MonitorSpec
from flywheel.monitoring.windows import Window, micros, micros_since_epoch, window_start_sql
from flywheel.tables.sql import quote_ident

__all__ = ["DATASET", "PREDICTION_COLUMN", "READ_BUDGET", "WORKERS", "Reference",
           "ReferenceLoader", "evaluate_drift"]

DATASET = "dataset"
READ_BUDGET = 64 * 2**20
"""About how many bytes of columns a drift monitor reads at once (8 per value)."""
WORKERS = min(4, os.cpu_count() or 1)
"""Columns of a group compared at once (numpy's sort, most of the work, frees the GIL)."""
PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A model version's training rows (its input columns, and `prediction`)."""

    rows: pa.Table | None
    why_missing: str = ""


ReferenceLoader = Callable[[str, int], Reference]
"""(model name, version) → its reference."""


def evaluate_drift(connection: Any, spec: MonitorSpec, source: MonitorInput,
                   windows: Sequence[Window], *,
                   reference_of: ReferenceLoader | None = None) -> list[MonitorResult]:
    if not windows:
        return []
    if spec.target.kind == "deployment" and spec.reference == "champion":
        if reference_of is None:
            raise MonitorSpecError(f"monitor {spec.name}: no model registry to read the "
                                   "champion's training set from")
        return _per_model_version(connection, spec, source, windows, reference_of)
    return _against_window(connection, spec, source, windows)


# A table, a feature view, or a deployment against a fixed window --------------------------
def _against_window(connection: Any, spec: MonitorSpec, source: MonitorInput,
                    windows: Sequence[Window]) -> list[MonitorResult]:
    assert isinstance(spec.reference, tuple)
    start, end = spec.reference
    if spec.target.kind == "deployment":
        columns = list(spec.columns or ())
        if not columns:
            raise MonitorSpecError(f"monitor {spec.name}: a deployment against a window needs "
                                   "`columns:` (the features to compare)")
        relation = _features_relation(connection, source, columns, None)
    else:
        columns = list(spec.columns or source.columns)
        relation = source.relation
    time = quote_ident(source.timestamp)
    # Columns in groups, not window by window: memory holds a group of columns (of the
    # reference, and of every pending window, sorted by window) of about `READ_BUDGET`
    # bytes, and the reference is read once however many windows are evaluated.
    ref_where = _between(time, start, end)
    pending = _between(time, windows[0].start, windows[-1].end)
    size = micros(spec.window)
    counts = dict(connection.execute(
        f"SELECT {window_start_sql(f'epoch_us({time})', size)} // {size}, count(*) "
        f"FROM {relation} WHERE {pending} "
        "GROUP BY ALL").fetchall())
    reference_rows = _count(connection, relation, ref_where)
    keys = {window: micros_since_epoch(window.start) // size for window in windows}
    drifts: dict[Window, list[ColumnDrift]] = {window: [] for window in windows}
    tests = _tests(spec, columns)
    per_read = max(1, READ_BUDGET // (8 * max(reference_rows, sum(counts.values()), 1)))
    for first in range(0, len(columns), per_read):
        group = list(columns[first:first + per_read])
        listed = ", ".join(quote_ident(c) for c in group)
        reference = connection.sql(f"SELECT {listed} FROM {relation} WHERE {ref_where}"
                                   ).to_arrow_table()
        current = connection.sql(
            f"SELECT {window_start_sql(f'epoch_us({time})', size)} // {size} AS __window, "
            f"{listed} "
            f"FROM {relation} WHERE {pending} ORDER BY __window").to_arrow_table()
        window_keys = current.column(0).to_numpy()
        sorted_reference: dict[str, Any] = {}
        for window in windows:
            low, high = np.searchsorted(window_keys, [keys[window], keys[window] + 1])
            part = current.slice(int(low), int(high - low)).drop_columns(["__window"])
            drifts[window] += drift_report(reference, part, columns=group, tests=tests,
                                           share=spec.share, workers=WORKERS,
                                           reference_cache=sorted_reference).columns
        del reference, current
    results = []
    for window in windows:
        report = DriftReport(columns=tuple(drifts[window]), share=spec.share)
        results += _report_rows(spec, window, report, rows=counts.get(keys[window], 0))
    return results


# A deployment against each answering model version's training set ------------------------
def _per_model_version(connection: Any, spec: MonitorSpec, source: MonitorInput,
                       windows: Sequence[Window], reference_of: ReferenceLoader,
                       ) -> list[MonitorResult]:
    time = quote_ident(source.timestamp)
    groups = connection.execute(
        f"SELECT DISTINCT member, model, model_version FROM {source.relation} "
        f"WHERE NOT shadow AND {time} >= ? AND {time} < ? ORDER BY ALL",
        [windows[0].start, windows[-1].end]).fetchall()
    references: dict[tuple[str, int], Reference] = {}
    results: list[MonitorResult] = []
    for member, model, version in groups:
        key = (str(model), int(version))
        if key not in references:
            references[key] = reference_of(*key)
        reference = references[key]
        if reference.rows is None:
            results += [_missing(spec, w, member, int(version), reference.why_missing)
                        for w in windows]
            continue
        columns = [c for c in (spec.columns or reference.rows.column_names)
                   if c != PREDICTION_COLUMN]
        relation = _features_relation(connection, source, columns, reference.rows.schema)
        # The predictions are compared too, unless `columns:` leaves them out.
        compare_predictions = PREDICTION_COLUMN in reference.rows.column_names and (
            not spec.columns or PREDICTION_COLUMN in spec.columns)
        wanted = [*columns, *([PREDICTION_COLUMN] if compare_predictions else [])]
        selected = ", ".join(quote_ident(c) for c in wanted)
        sorted_reference: dict[str, Any] = {}
        for window in windows:
            where = (f"NOT shadow AND member = {_literal(member)} AND model_version = "
                     f"{int(version)} AND {_between(time, window.start, window.end)}")
            rows = _count(connection, relation, where)
            if not rows:
                continue  # this version did not answer in this window
            current = duckdb_source(connection, f"SELECT {selected} FROM {relation} "
                                    f"WHERE {where}")
            results += _rows(spec, window, reference.rows.select(wanted), current, wanted,
                             rows=rows, member=str(member), model_version=int(version),
                             reference_cache=sorted_reference)
    answered = {r.window_start for r in results}
    # A window no version answered in still gets its rows: nothing to compare, unknown.
    results += [_missing(spec, w, None, None, "no predictions in this window")
                for w in windows if w.start not in answered]
    return results


def _features_relation(connection: Any, source: MonitorInput,
                       columns: Sequence[str], schema: pa.Schema | None) -> str:
    """A view of the predictions with each feature (and the prediction) as a column, typed
    as the reference has it (JSON numbers and text cast back)."""
    extracted = []
    for column in columns:
        path = "$." + json.dumps(column)
        kind = _duckdb_type(schema.field(column).type) if schema is not None and \
            column in schema.names else "DOUBLE"
        extracted.append(f"TRY_CAST(json_extract_string(\"features\", '{_sql_text(path)}') "
                         f"AS {kind}) AS {quote_ident(column)}")
    prediction = ("coalesce(TRY_CAST(json_extract_string(\"outputs\", '$.probability') AS "
                  "DOUBLE), TRY_CAST(json_extract_string(\"outputs\", '$.value') AS DOUBLE))")
    name = "__drift_features"
    listed = "".join(f", {e}" for e in extracted)
    connection.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {quote_ident(source.timestamp)}, "
        f"shadow, member, model, model_version{listed}, {prediction} AS "
        f"{PREDICTION_COLUMN} FROM {source.relation}")
    return name


def _duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "DOUBLE"
    return "VARCHAR"


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _literal(value: object) -> str:
    return "'" + _sql_text(str(value)) + "'"


def _between(column: str, start: Any, end: Any) -> str:
    """`start <= column < end`, the bounds as literals (a `duckdb_source` takes SQL alone);
    they are timestamps the runner cut, never user text."""
    return (f"{column} >= TIMESTAMPTZ {_literal(_iso(start))} AND {column} < "
            f"TIMESTAMPTZ {_literal(_iso(end))}")


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _count(connection: Any, relation: str, where: str) -> int:
    return int(connection.execute(f"SELECT count(*) FROM {relation} WHERE {where}"
                                  ).fetchall()[0][0])


# Results -----------------------------------------------------------------------------------
def _rows(spec: MonitorSpec, window: Window, reference: ColumnSource | pa.Table,
          current: ColumnSource, columns: Sequence[str], *, rows: int,
          member: str | None = None, model_version: int | None = None,
          reference_cache: dict[str, Any] | None = None) -> list[MonitorResult]:
    report = drift_report(reference, current, columns=list(columns),
                          tests=_tests(spec, columns), share=spec.share,
                          reference_cache=reference_cache)
    return _report_rows(spec, window, report, rows=rows, member=member,
                        model_version=model_version)


def _tests(spec: MonitorSpec, columns: Sequence[str]) -> dict[str, ColumnTest]:
    return {c: ColumnTest(statistic=t.statistic, threshold=t.threshold)
            for c, t in spec.tests.items() if c in columns}


def _report_rows(spec: MonitorSpec, window: Window, report: DriftReport, *, rows: int,
                 member: str | None = None, model_version: int | None = None,
                 ) -> list[MonitorResult]:
    enough = rows >= spec.min_rows
    found = [_column_row(spec, window, c, enough, member, model_version)
             for c in report.columns]
    found.append(_dataset_row(spec, window, report, rows, enough, member, model_version))
    return found


def _column_row(spec: MonitorSpec, window: Window, drift: ColumnDrift, enough: bool,
                member: str | None, model_version: int | None) -> MonitorResult:
    status: Status = "unknown" if drift.value is None or not enough else (
        "red" if drift.drifted else "ok")
    detail = json.dumps({"bins": list(drift.bins), "reference": _rounded(drift.reference_share),
                         "current": _rounded(drift.current_share), "kind": drift.kind,
                         "statistic_value": drift.value}, sort_keys=True)
    # A test decides on its p-value (ks, chi2): the p-value is the value kept, so that
    # value and threshold compare as the decision did.
    value = drift.p_value if drift.statistic in P_VALUE_STATISTICS else drift.value
    return MonitorResult(
        monitor=spec.name, kind="drift", window_start=window.start, window_end=window.end,
        subject=drift.column, statistic=drift.statistic, value=value,
        threshold=drift.threshold, status=status, rows=drift.current_rows, member=member,
        model_version=model_version, detail=detail)


def _dataset_row(spec: MonitorSpec, window: Window, report: DriftReport, rows: int,
                 enough: bool, member: str | None, model_version: int | None) -> MonitorResult:
    known = [c for c in report.columns if c.value is not None]
    status: Status = "unknown" if not known or not enough else (
        "red" if report.dataset_drift else "ok")
    drifted = [c.column for c in known if c.drifted]
    detail = f"{len(drifted)} of {len(known)} columns drifted" + (
        f": {', '.join(drifted)}" if drifted else "")
    return MonitorResult(
        monitor=spec.name, kind="drift", window_start=window.start, window_end=window.end,
        subject=DATASET, statistic="drifted_share", value=report.drifted_share if known else None,
        threshold=spec.share, status=status, rows=rows, member=member,
        model_version=model_version, detail=detail)


def _missing(spec: MonitorSpec, window: Window, member: str | None, model_version: int | None,
             why: str) -> MonitorResult:
    return MonitorResult(
        monitor=spec.name, kind="drift", window_start=window.start, window_end=window.end,
        subject=DATASET, statistic="drifted_share", value=None, threshold=spec.share,
        status="unknown", rows=0, member=member, model_version=model_version, detail=why)


def _rounded(shares: Sequence[float]) -> list[float]:
    return [round(float(s), 6) for s in shares]
