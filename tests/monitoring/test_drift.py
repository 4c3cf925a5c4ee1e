"""drift_report: kinds, defaults, nulls, empty sides, overrides and per-column memory."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from flywheel.monitoring import drift
from flywheel.monitoring.drift import ColumnTest, drift_report
from flywheel.monitoring.errors import MonitorSpecError


def _by_column(report: drift.DriftReport) -> dict[str, drift.ColumnDrift]:
    return {c.column: c for c in report.columns}


def _frames(rows: int, shift: float, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "price": rng.normal(10 + shift, 2, rows),
        "clicks": rng.integers(0, 1000, rows),
        "level": rng.integers(0, 3, rows),
        "channel": rng.choice(["web", "app", "store"], rows,
                              p=[0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]),
        "member": rng.random(rows) < 0.5,
    })


def test_kinds_and_default_tests_follow_the_size_rule() -> None:
    small = _by_column(drift_report(_frames(500, 0, 1), _frames(500, 0, 2)))
    large = _by_column(drift_report(_frames(5000, 0, 1), _frames(5000, 0, 2)))
    assert {k: c.kind for k, c in small.items()} == {
        "price": "numeric", "clicks": "numeric", "level": "categorical",
        "channel": "categorical", "member": "categorical"}
    assert small["price"].statistic == "ks" and small["channel"].statistic == "chi2"
    assert large["price"].statistic == "wasserstein"
    assert large["member"].statistic == "jensen_shannon"
    assert not any(c.drifted for c in large.values())


def test_shifted_columns_drift_and_values_match_scipy() -> None:
    ref, cur = _frames(5000, 0, 1), _frames(5000, 1.0, 5)
    report = drift_report(ref, cur, tests={"clicks": ColumnTest(statistic="ks",
                                                                threshold=0.05)})
    got = _by_column(report)
    assert got["price"].drifted and got["channel"].drifted
    assert not got["clicks"].drifted and not got["member"].drifted
    price_ref = ref.column("price").to_numpy()
    price_cur = cur.column("price").to_numpy()
    expected = sps.wasserstein_distance(price_ref, price_cur) / np.std(price_ref)
    assert got["price"].value == pytest.approx(expected, abs=1e-9)
    clicks = sps.ks_2samp(ref.column("clicks").to_numpy(), cur.column("clicks").to_numpy())
    assert got["clicks"].value == pytest.approx(clicks.statistic, abs=1e-9)
    assert got["clicks"].p_value == pytest.approx(clicks.pvalue, abs=1e-9)
    assert report.drifted_share == pytest.approx(2 / 5) and not report.dataset_drift
    assert drift_report(ref, cur, share=0.4).dataset_drift


def test_nulls_are_counted_and_left_out() -> None:
    ref = pa.table({"x": [1.0, None, 2.0, float("nan"), 3.0] * 10, "c": ["a", None] * 25})
    cur = pa.table({"x": [1.0, 2.0, 3.0, None, None] * 10, "c": ["a", "a"] * 25})
    got = _by_column(drift_report(ref, cur, tests={"x": ColumnTest(statistic="ks",
                                                                   threshold=0.05)}))
    assert (got["x"].reference_nulls, got["x"].current_nulls) == (20, 20)
    assert got["x"].value == 0.0 and not got["x"].drifted
    assert (got["c"].reference_nulls, got["c"].current_nulls) == (25, 0)
    assert got["c"].value == pytest.approx(0.0)


@pytest.mark.parametrize("statistic", drift.STATISTICS)
def test_all_null_or_empty_sides_give_none_never_nan(statistic: str) -> None:
    ref = pa.table({"x": pa.array([1.5, 2.5, 3.5] * 5)})
    all_null = pa.table({"x": pa.array([None] * 4, type=pa.float64())})
    empty = pa.table({"x": pa.array([], type=pa.float64())})
    for current in (all_null, empty):
        for a, b in ((ref, current), (current, ref)):
            column = drift_report(a, b, tests={"x": ColumnTest(statistic=statistic,
                                                               threshold=0.1)}).columns[0]
            assert column.value is None and column.p_value is None and not column.drifted
    report = drift_report(empty, all_null)
    assert report.drifted_share == 0.0 and not report.dataset_drift


def test_unseen_categories_on_either_side_are_compared() -> None:
    ref = pa.table({"c": ["a"] * 60 + ["b"] * 40})
    cur = pa.table({"c": ["a"] * 50 + ["b"] * 30 + ["new"] * 20})
    forward = drift_report(ref, cur).columns[0]
    backward = drift_report(cur, ref).columns[0]
    assert forward.bins == ("a", "b", "new") and forward.reference_share[2] == 0.0
    assert forward.drifted and backward.drifted
    expected = sps.chi2_contingency([[60, 40, 0], [50, 30, 20]], correction=False)
    assert forward.value == pytest.approx(expected.statistic, rel=1e-9)
    assert forward.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_dictionary_encoded_columns_are_categorical() -> None:
    ref = pa.table({"c": pa.array(["x", "y"] * 50).dictionary_encode()})
    cur = pa.table({"c": pa.array(["x"] * 100).dictionary_encode()})
    column = drift_report(ref, cur).columns[0]
    assert column.kind == "categorical" and column.drifted


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-100, 100)), max_size=60),
       st.lists(st.one_of(st.none(), st.floats(-100, 100)), max_size=60),
       st.sampled_from(drift.STATISTICS[:2] + drift.STATISTICS[3:]))
def test_random_numeric_columns_never_crash_or_give_nan(a: list[float | None],
                                                        b: list[float | None],
                                                        statistic: str) -> None:
    ref = pa.table({"x": pa.array(a, type=pa.float64())})
    cur = pa.table({"x": pa.array(b, type=pa.float64())})
    column = drift_report(ref, cur, tests={"x": ColumnTest(statistic=statistic,
                                                           threshold=0.1)}).columns[0]
    present_a = sum(v is not None for v in a)
    present_b = sum(v is not None for v in b)
    assert column.reference_nulls == len(a) - present_a
    if present_a and present_b:
        assert column.value is not None and np.isfinite(column.value)
    else:
        assert column.value is None


def test_bad_overrides_are_one_line_errors() -> None:
    with pytest.raises(MonitorSpecError, match="unknown drift statistic"):
        ColumnTest(statistic="t_test", threshold=0.1)
    table = pa.table({"c": ["a", "b"]})
    with pytest.raises(MonitorSpecError, match="categorical"):
        drift_report(table, table, tests={"c": ColumnTest(statistic="ks", threshold=0.1)})
    with pytest.raises(MonitorSpecError, match="not in the current"):
        drift_report(table, pa.table({"d": [1]}))


def test_duckdb_source_reads_one_column_per_query() -> None:
    connection = duckdb.connect()
    connection.execute("create table t as select range::double as x, "
                       "case when range % 2 = 0 then 'a' else 'b' end as c from range(2000)")
    source = drift.duckdb_source(connection, "select * from t")
    shifted = drift.duckdb_source(connection, "select x + 500 as x, c from t")
    got = _by_column(drift_report(source, shifted))
    assert got["x"].drifted and not got["c"].drifted
    assert got["x"].reference_rows == 2000


class _CountingSource:
    """Makes each column when it is read, and records the bytes Arrow holds then."""

    def __init__(self, columns: int, rows: int, seed: int) -> None:
        self.names = [f"f{i}" for i in range(columns)]
        self.rows, self.seed = rows, seed
        self.allocated_at_read: list[int] = []

    def schema(self) -> pa.Schema:
        return pa.schema([(name, pa.float64()) for name in self.names])

    def column(self, name: str) -> pa.ChunkedArray:
        self.allocated_at_read.append(pa.total_allocated_bytes())
        rng = np.random.default_rng(self.seed + self.names.index(name))
        return pa.chunked_array([pa.array(rng.normal(size=self.rows))])


def test_memory_holds_one_column_at_a_time() -> None:
    rows, columns = 200_000, 20
    reference, current = _CountingSource(columns, rows, 0), _CountingSource(columns, rows, 99)
    baseline = pa.total_allocated_bytes()
    report = drift_report(reference, current)
    assert len(report.columns) == columns
    one_column = rows * 8
    held = max(reference.allocated_at_read + current.allocated_at_read) - baseline
    # The whole table would be 2 × 20 columns; never more than this pair is alive.
    assert held <= 2 * one_column, held
