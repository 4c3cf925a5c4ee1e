"""Drift of each column of a current sample against a reference: one column at a time.

Default tests (`DEFAULT_TESTS`), chosen from the column's kind and the reference's size:

=====================  ==========================  ===================================
column                 reference ≤ 1,000 rows      reference > 1,000 rows
=====================  ==========================  ===================================
numeric                ``ks`` (p < 0.05)           ``wasserstein`` (normed ≥ 0.1)
categorical            ``chi2`` (p < 0.05)         ``jensen_shannon`` (≥ 0.1)
=====================  ==========================  ===================================

This is the choice of Evidently's DataDriftPreset, with three precise differences:
Evidently uses a Z-test for a binary column of a small reference where Flywheel uses χ²
(on a 2 × 2 table without continuity correction χ² is the square of the pooled two-proportion
Z statistic, so the p-value and the decision are the same); Evidently treats any numeric
column with at most 5 distinct reference values as categorical, Flywheel only integer ones
(a float column stays numeric); Evidently's χ² is a goodness-of-fit test of the current
counts against the reference's shares, Flywheel's a test of homogeneity of the 2 × k table
(which counts the reference's own sampling error, and accepts categories seen on one side).
Jensen–Shannon and PSI bins for numeric columns are the reference's deciles.

The Wasserstein distance is reported normed by the reference's standard deviation
(population, floored at 0.001), as Evidently does, so one threshold fits every scale.

Categorical columns: strings, booleans, dictionary-encoded columns, and integer columns
with at most `CATEGORICAL_MAX_DISTINCT` distinct values in the reference. Nulls (and NaN)
are counted and left out; an empty side gives value None, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from flywheel.monitoring import stats
from flywheel.monitoring.errors import MonitorSpecError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CATEGORICAL_MAX_DISTINCT",
    "DEFAULT_TESTS",
    "LARGE_REFERENCE_ROWS",
    "MAX_PLOTTED_CATEGORIES",
    "P_VALUE_STATISTICS",
    "STATISTICS",
    "WASSERSTEIN_NORM_FLOOR",
    "ColumnDrift",
    "ColumnSource",
    "ColumnTest",
    "DriftReport",
    "default_test",
    "drift_report",
    "duckdb_source",
    "table_source",
]

STATISTICS = ("psi", "ks", "chi2", "jensen_shannon", "wasserstein")
P_VALUE_STATISTICS = frozenset({"ks", "chi2"})
LARGE_REFERENCE_ROWS = 1_000
CATEGORICAL_MAX_DISTINCT = 5
MAX_PLOTTED_CATEGORIES = 20
WASSERSTEIN_NORM_FLOOR = 0.001


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnTest:
    """A statistic and its threshold: for ``ks`` / ``chi2`` a p-value below it drifts,
    for the distances a value at or above it drifts."""

    statistic: str
    threshold: float

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise MonitorSpecError(f"unknown drift statistic {self.statistic!r}",
                                   hint="one of: " + ", ".join(STATISTICS))
        if not self.threshold >= 0:
            raise MonitorSpecError(f"drift threshold must be ≥ 0, got {self.threshold}")


DEFAULT_TESTS: Mapping[tuple[str, bool], ColumnTest] = {
    ("numeric", False): ColumnTest(statistic="ks", threshold=0.05),
    ("numeric", True): ColumnTest(statistic="wasserstein", threshold=0.1),
    ("categorical", False): ColumnTest(statistic="chi2", threshold=0.05),
    ("categorical", True): ColumnTest(statistic="jensen_shannon", threshold=0.1),
}
"""(kind, reference has more than `LARGE_REFERENCE_ROWS` rows) → the default test."""


def default_test(kind: str, reference_rows: int) -> ColumnTest:
    return DEFAULT_TESTS[(kind, reference_rows > LARGE_REFERENCE_ROWS)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDrift:
    column: str
    kind: str
    statistic: str
    value: float | None
    threshold: float
    drifted: bool
    p_value: float | None
    reference_rows: int
    current_rows: int
    reference_nulls: int
    current_nulls: int
    bins: tuple[str, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    columns: tuple[ColumnDrift, ...]
    share: float

    @property
    def drifted_share(self) -> float:
        known = [c for c in self.columns if c.value is not None]
        return sum(c.drifted for c in known) / len(known) if known else 0.0

    @property
    def dataset_drift(self) -> bool:
        return any(c.value is not None for c in self.columns) and \
            self.drifted_share >= self.share


class ColumnSource(Protocol):
    """Reads one column at a time, so memory holds one column, not the table."""

    def schema(self) -> pa.Schema: ...

    def column(self, name: str) -> pa.ChunkedArray: ...


@dataclass(frozen=True, slots=True)
class _TableSource:
    table: pa.Table

    def schema(self) -> pa.Schema:
        return self.table.schema

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)


def table_source(table: pa.Table) -> ColumnSource:
    return _TableSource(table)


class _DuckDBSource:
    def __init__(self, connection: Any, sql: str) -> None:
        self._connection = connection
        self._sql = sql

    def schema(self) -> pa.Schema:
        return self._connection.sql(
            f"select * from ({self._sql}) limit 0").to_arrow_table().schema

    def column(self, name: str) -> pa.ChunkedArray:
        quoted = '"' + name.replace('"', '""') + '"'
        table = self._connection.sql(
            f"select {quoted} from ({self._sql})").to_arrow_table()
        return table.column(0)


def duckdb_source(connection: Any, sql: str) -> ColumnSource:
    """A source reading ``select <column> from (<sql>)`` on a DuckDB connection."""
    return _DuckDBSource(connection, sql)


def drift_report(reference: ColumnSource | pa.Table, current: ColumnSource | pa.Table, *,
                 columns: Sequence[str] | None = None,
                 tests: Mapping[str, ColumnTest] | None = None,
                 share: float = 0.5, workers: int = 1,
                 reference_cache: dict[str, Any] | None = None) -> DriftReport:
    """Drift of `columns` (default: every column of the reference) of `current` against
    `reference`. `workers` > 1 compares that many columns at once (numpy's sort releases
    the GIL), holding that many columns in memory. `reference_cache`: a dict kept between
    calls against the same reference (several windows), so its columns are sorted once."""
    ref, cur = _as_source(reference), _as_source(current)
    ref_schema, cur_schema = ref.schema(), cur.schema()
    names = list(columns) if columns is not None else list(ref_schema.names)
    for name in names:
        for side, schema in (("reference", ref_schema), ("current", cur_schema)):
            if name not in schema.names:
                raise MonitorSpecError(f"column {name!r} is not in the {side} data")
    overrides = dict(tests or {})

    def one(name: str) -> ColumnDrift:
        return _column_drift(name, ref.column(name), cur.column(name), overrides.get(name),
                             reference_cache)

    if workers <= 1:
        results = [one(name) for name in names]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, names))
    return DriftReport(columns=tuple(results), share=share)


def _as_source(data: ColumnSource | pa.Table) -> ColumnSource:
    import pyarrow as pa

    return table_source(data) if isinstance(data, pa.Table) else data


def _column_drift(name: str, reference: pa.ChunkedArray, current: pa.ChunkedArray,
                  override: ColumnTest | None,
                  reference_cache: dict[str, Any] | None = None) -> ColumnDrift:
    import pyarrow as pa

    reference, current = _decoded(reference), _decoded(current)
    kind = "categorical"
    numeric = pa.types.is_integer(reference.type) or pa.types.is_floating(reference.type) \
        or pa.types.is_decimal(reference.type)
    if numeric and (not pa.types.is_integer(reference.type) or \
                _distinct_above(reference, CATEGORICAL_MAX_DISTINCT)):
        kind = "numeric"
    if kind == "numeric":
        return _numeric_drift(name, reference, current, override, reference_cache)
    return _categorical_drift(name, reference, current, override)


def _decoded(values: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa

    if pa.types.is_dictionary(values.type):
        return values.cast(values.type.value_type)
    return values


def _distinct_above(values: pa.ChunkedArray, limit: int) -> bool:
    import pyarrow.compute as pc

    return int(pc.count_distinct(values).as_py()) > limit


def _finite_sorted(values: pa.ChunkedArray) -> tuple[stats.Floats, int]:
    """The sorted finite values and how many were null or NaN."""
    import pyarrow as pa

    if pa.types.is_decimal(values.type):
        values = values.cast(pa.float64())
    array = np.concatenate([chunk.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                            for chunk in values.drop_null().chunks] or [np.empty(0)])
    finite = array[np.isfinite(array)] if not np.isfinite(array).all() else array
    nulls = len(values) - len(finite)
    return np.sort(finite), nulls


def _decide(test: ColumnTest, value: float | None, p_value: float | None) -> bool:
    if value is None:
        return False
    if test.statistic in P_VALUE_STATISTICS:
        return p_value is not None and p_value < test.threshold
    return value >= test.threshold


def _numeric_drift(name: str, reference: pa.ChunkedArray, current: pa.ChunkedArray,
                   override: ColumnTest | None,
                   reference_cache: dict[str, Any] | None = None) -> ColumnDrift:
    # The sorted reference is the same for every window compared with it: sorted once.
    cached = reference_cache.get(name) if reference_cache is not None else None
    ref, ref_nulls = cached if cached is not None else _finite_sorted(reference)
    if reference_cache is not None:
        reference_cache[name] = (ref, ref_nulls)
    cur, cur_nulls = _finite_sorted(current)
    test = override or default_test("numeric", len(ref))
    edges = stats.quantile_edges(ref)
    ref_counts, cur_counts = stats.bin_counts(ref, edges), stats.bin_counts(cur, edges)
    value: float | None = None
    p_value: float | None = None
    if len(ref) and len(cur):
        if test.statistic in ("ks", "wasserstein"):
            ks = stats.ks_and_wasserstein(ref, cur, p_value=test.statistic == "ks")
            if test.statistic == "ks":
                value, p_value = ks.statistic, ks.p_value
            else:
                value = ks.wasserstein / max(float(np.std(ref)), WASSERSTEIN_NORM_FLOOR)
        elif test.statistic == "psi":
            value = stats.psi(ref_counts, cur_counts)
        elif test.statistic == "jensen_shannon":
            value = stats.jensen_shannon(ref_counts, cur_counts)
        else:
            chi = stats.chi_squared(ref_counts, cur_counts)
            value, p_value = chi.statistic, chi.p_value
    labels = tuple(f"{edge:.6g}" for edge in edges)
    return ColumnDrift(
        column=name, kind="numeric", statistic=test.statistic, value=value,
        threshold=test.threshold, drifted=_decide(test, value, p_value), p_value=p_value,
        reference_rows=len(reference), current_rows=len(current),
        reference_nulls=ref_nulls, current_nulls=cur_nulls,
        bins=labels, reference_share=tuple(stats.shares(ref_counts).tolist()),
        current_share=tuple(stats.shares(cur_counts).tolist()))


def _value_counts(values: pa.ChunkedArray) -> dict[str, int]:
    import pyarrow.compute as pc

    counted = pc.value_counts(values.drop_null())
    keys = counted.field("values").to_pylist()
    return {str(key): int(count) for key, count in
            zip(keys, counted.field("counts").to_pylist(), strict=True)}


def _categorical_drift(name: str, reference: pa.ChunkedArray, current: pa.ChunkedArray,
                       override: ColumnTest | None) -> ColumnDrift:
    ref_map, cur_map = _value_counts(reference), _value_counts(current)
    ref_total, cur_total = sum(ref_map.values()), sum(cur_map.values())
    test = override or default_test("categorical", ref_total)
    if test.statistic in ("ks", "wasserstein"):
        raise MonitorSpecError(f"column {name!r} is categorical: {test.statistic} needs "
                               "numbers", hint="use chi2, jensen_shannon or psi")
    categories = sorted(ref_map, key=lambda key: -ref_map[key]) + \
        sorted((key for key in cur_map if key not in ref_map), key=lambda key: -cur_map[key])
    ref_counts = np.array([ref_map.get(key, 0) for key in categories], dtype=np.int64)
    cur_counts = np.array([cur_map.get(key, 0) for key in categories], dtype=np.int64)
    value: float | None = None
    p_value: float | None = None
    if ref_total and cur_total:
        if test.statistic == "chi2":
            chi = stats.chi_squared(ref_counts, cur_counts)
            value, p_value = chi.statistic, chi.p_value
        elif test.statistic == "psi":
            value = stats.psi(ref_counts, cur_counts)
        else:
            value = stats.jensen_shannon(ref_counts, cur_counts)
    shown = slice(0, MAX_PLOTTED_CATEGORIES)
    return ColumnDrift(
        column=name, kind="categorical", statistic=test.statistic, value=value,
        threshold=test.threshold, drifted=_decide(test, value, p_value), p_value=p_value,
        reference_rows=len(reference), current_rows=len(current),
        reference_nulls=len(reference) - ref_total, current_nulls=len(current) - cur_total,
        bins=tuple(categories[shown]),
        reference_share=tuple(stats.shares(ref_counts)[shown].tolist()),
        current_share=tuple(stats.shares(cur_counts)[shown].tolist()))


