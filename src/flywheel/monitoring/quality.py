"""Data quality over windows: nulls, ranges, accepted values, freshness, volume, schema.

One row per (window, rule), from two grouped scans of the target (the column rules in one,
the row counts per window in the other), whatever the number of windows or rules:

- `null_share`: share of the window's rows whose column is null (NaN counts as null); red
  above `max_share`.
- `out_of_range_share`: share of the non-null values outside [low, high]; red above 0.
- `unaccepted_share`: share of the non-null values (as text) not accepted; red above 0.
- `freshness_seconds`: the window's end minus the newest event time at or before it (over
  every row, not only the window's); red above `max_age`; unknown with no row by the end.
- `volume_ratio`: the window's rows over the mean of the `baseline` windows before it
  (empty ones count as 0, none before the first row's window); red outside
  [min_ratio, max_ratio]; unknown with no window before it, or a mean of 0.
- `schema_changes`: columns added, removed or retyped since the schema the previous
  evaluation kept (in its `detail`); red above 0.

A window with fewer rows than `min_rows` is `unknown` for the column rules (its value is kept
when there is one); freshness, volume and schema judge every window.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.results import MonitorResult, Status
from flywheel.monitoring.spec import MonitorSpec, Rule
from flywheel.monitoring.windows import Window, micros, micros_since_epoch, window_start_sql
from flywheel.tables.sql import quote_ident

__all__ = ["evaluate_quality", "relation_schema"]

_SCALAR_NUMBER = re.compile(
    r"U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|REAL|DECIMAL(\(\d+,\s*\d+\))?")


def relation_schema(connection: Any, relation: str) -> dict[str, str]:
    return {str(row[0]): str(row[1])
            for row in connection.execute(f"DESCRIBE {relation}").fetchall()}


def evaluate_quality(connection: Any, spec: MonitorSpec, *, relation: str, timestamp: str,
                     windows: Sequence[Window],
                     schema_before: Mapping[str, str] | None = None) -> list[MonitorResult]:
    if not windows:
        return []
    schema = relation_schema(connection, relation)
    _check_columns(spec, schema)
    size = micros(windows[0].end - windows[0].start)
    time = f"epoch_us({quote_ident(timestamp)})"
    counts = _column_counts(connection, spec, relation, time, size, windows, schema)
    volume, newest = _volumes(connection, relation, time, size)
    results = []
    for window in windows:
        start = micros_since_epoch(window.start)
        found = counts.get(start)
        rows = int(found[0]) if found else 0
        for index, rule in enumerate(spec.rules):
            value, threshold, red, detail = _judge(rule, index, found, rows, start, size,
                                                   volume, schema, schema_before, newest)
            # Freshness, volume and schema are about the table, not the window's rows: an
            # empty window is what they catch.
            enough = rows >= spec.min_rows or rule.kind in ("freshness", "volume", "schema")
            status: Status = "unknown" if value is None or not enough else (
                "red" if red else "ok")
            results.append(MonitorResult(
                monitor=spec.name, kind="quality", window_start=window.start,
                window_end=window.end, subject=rule.subject, statistic=_STATISTIC[rule.kind],
                value=value, threshold=threshold, status=status, rows=rows, detail=detail))
    return sorted(results, key=lambda r: (r.window_start, r.subject, r.statistic))


_STATISTIC = {"null_share": "null_share", "range": "out_of_range_share",
              "accepted": "unaccepted_share", "freshness": "freshness_seconds",
              "volume": "volume_ratio", "schema": "schema_changes"}


def _check_columns(spec: MonitorSpec, schema: Mapping[str, str]) -> None:
    for rule in spec.rules:
        if rule.column is None:
            continue
        if rule.column not in schema:
            raise MonitorSpecError(f"monitor {spec.name}: no column {rule.column!r}",
                                   hint="it has: " + ", ".join(sorted(schema)))
        if rule.kind == "range" and not _is_number(schema[rule.column]):
            raise MonitorSpecError(f"monitor {spec.name}: range on {rule.column}, a "
                                   f"{schema[rule.column]} column, needs numbers")


def _is_number(kind: str) -> bool:
    """A scalar numeric type (not a list, map or struct of numbers)."""
    return _SCALAR_NUMBER.fullmatch(kind) is not None


def _is_float(kind: str) -> bool:
    return kind in ("FLOAT", "DOUBLE", "REAL")


def _column_counts(connection: Any, spec: MonitorSpec, relation: str, time: str, size: int,
                   windows: Sequence[Window], schema: Mapping[str, str],
                   ) -> dict[int, tuple[Any, ...]]:
    """Per window start: rows, then per rule its bad count and its non-null count."""
    parts = ["count(*)"]
    for rule in spec.rules:
        if rule.column is None:
            parts += ["0", "0"]
            continue
        column = quote_ident(rule.column)
        # NaN counts as null in a float column; in a text column "nan" is a value.
        is_null = (f"({column} IS NULL OR isnan({column}) IS TRUE)"
                   if _is_float(schema[rule.column]) else f"({column} IS NULL)")
        if rule.kind == "null_share":
            parts += [f"count(*) FILTER (WHERE {is_null})", "count(*)"]
        elif rule.kind == "range":
            outside = " OR ".join(
                [f"{column} < {rule.low!r}"] * (rule.low is not None)
                + [f"{column} > {rule.high!r}"] * (rule.high is not None)) or "false"
            parts += [f"count(*) FILTER (WHERE NOT {is_null} AND ({outside}))",
                      f"count(*) FILTER (WHERE NOT {is_null})"]
        else:
            listed = ", ".join("'" + v.replace("'", "''") + "'" for v in rule.accepted)
            parts += [f"count(*) FILTER (WHERE NOT {is_null} AND CAST({column} AS VARCHAR) "
                      f"NOT IN ({listed}))", f"count(*) FILTER (WHERE NOT {is_null})"]
    low, high = micros_since_epoch(windows[0].start), micros_since_epoch(windows[-1].start) + size
    rows = connection.execute(
        f"SELECT {window_start_sql(time, size)} AS w, {', '.join(parts)} FROM {relation} "
        f"WHERE {time} >= {low} AND {time} < {high} GROUP BY w").fetchall()
    return {int(row[0]): tuple(row[1:]) for row in rows}


def _volumes(connection: Any, relation: str, time: str, size: int,
             ) -> tuple[dict[int, int], Callable[[int], int | None]]:
    """Rows per window start, and the newest event time at or before a moment (a window's
    end): one scan of the table, however many windows are judged."""
    found = connection.execute(
        f"SELECT {window_start_sql(time, size)} AS w, count(*), min({time}), max({time}) "
        f"FROM {relation} GROUP BY w ORDER BY w").fetchall()
    starts = [int(row[0]) for row in found]
    firsts = {int(row[0]): int(row[2]) for row in found}
    running, newest_upto = None, []
    for row in found:
        running = int(row[3]) if running is None else max(running, int(row[3]))
        newest_upto.append(running)

    def newest(end: int) -> int | None:
        if firsts.get(end) == end:  # a row exactly at the end: the next window's first
            return end
        before = bisect.bisect_left(starts, end)  # windows starting before `end`
        return newest_upto[before - 1] if before else None

    return {int(row[0]): int(row[1]) for row in found}, newest


def _judge(rule: Rule, index: int, found: tuple[Any, ...] | None, rows: int, start: int,
           size: int, volume: Mapping[int, int], schema: Mapping[str, str],
           before: Mapping[str, str] | None, newest_at: Callable[[int], int | None],
           ) -> tuple[float | None, float | None, bool, str]:
    if rule.kind in ("null_share", "range", "accepted"):
        bad = int(found[1 + 2 * index]) if found else 0
        total = int(found[2 + 2 * index]) if found else 0
        share = bad / total if total else None
        limit = rule.max_share if rule.kind == "null_share" else 0.0
        what = "null" if rule.kind == "null_share" else (
            "out of range" if rule.kind == "range" else "not accepted")
        return share, limit, share is not None and share > limit, \
            f"{bad:,} of {total:,} values {what}"
    if rule.kind == "freshness":
        assert rule.max_age is not None
        # The newest row at or before the window's end: its age at that moment.
        newest = newest_at(start + size)
        if newest is None:
            return None, rule.max_age.total_seconds(), False, "no rows yet"
        age = (start + size - int(newest)) / 1_000_000
        return age, rule.max_age.total_seconds(), age > rule.max_age.total_seconds(), \
            f"newest event {age:,.0f} s before the window's end"
    if rule.kind == "volume":
        first = min(volume) if volume else start
        earlier = [volume.get(start - k * size, 0) for k in range(1, rule.baseline + 1)
                   if start - k * size >= first]
        mean = sum(earlier) / len(earlier) if earlier else 0.0
        if not mean:
            return None, rule.min_ratio, False, "no earlier window to compare with"
        ratio = rows / mean
        return ratio, rule.min_ratio, not rule.min_ratio <= ratio <= rule.max_ratio, \
            f"{rows:,} rows against {mean:,.1f} in the {len(earlier)} windows before"
    changes = _schema_changes(before, schema)
    count = len(changes["added"]) + len(changes["removed"]) + len(changes["retyped"])
    return float(count), 0.0, count > 0, json.dumps({**changes, "schema": dict(schema)},
                                                      sort_keys=True)


def _schema_changes(before: Mapping[str, str] | None,
                    now: Mapping[str, str]) -> dict[str, Any]:
    if before is None:
        return {"added": [], "removed": [], "retyped": {}}
    return {"added": sorted(set(now) - set(before)),
            "removed": sorted(set(before) - set(now)),
            "retyped": {c: [before[c], now[c]] for c in sorted(set(now) & set(before))
                        if before[c] != now[c]}}


