"""Quality rules over windows: hand-computed cases, and every rule against a plain Python
computation on random rows."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.quality import evaluate_quality
from flywheel.monitoring.spec import MonitorSpec, Rule, Target
from flywheel.monitoring.windows import Window, complete_windows
from flywheel.tables.sql import duckdb_connection

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
RULES = (Rule(kind="null_share", column="x", max_share=0.25),
         Rule(kind="range", column="x", low=0.0, high=10.0),
         Rule(kind="accepted", column="channel", accepted=("web", "app")),
         Rule(kind="freshness", max_age=dt.timedelta(minutes=30)),
         Rule(kind="volume", min_ratio=0.5, max_ratio=2.0, baseline=2))


def spec(rules: tuple[Rule, ...] = RULES, min_rows: int = 1) -> MonitorSpec:
    return MonitorSpec(name="q", kind="quality", target=Target(kind="table", name="t"),
                       window=HOUR, rules=rules, min_rows=min_rows)


def evaluate(rows: list[dict[str, Any]], windows: list[Window], **kwargs: Any) -> list[Any]:
    table = pa.table({"event_time": pa.array([r["at"] for r in rows], pa.timestamp("us", "UTC")),
                      "x": pa.array([r["x"] for r in rows], pa.float64()),
                      "channel": pa.array([r["channel"] for r in rows], pa.string())})
    con = duckdb_connection()
    con.register("t", table)
    try:
        return evaluate_quality(con, kwargs.pop("monitor", spec()), relation="t",
                                timestamp="event_time", windows=windows, **kwargs)
    finally:
        con.close()


def by(results: list[Any]) -> dict[tuple[dt.datetime, str], Any]:
    return {(r.window_start, r.statistic): r for r in results}


def test_each_rule_on_known_rows() -> None:
    rows = [{"at": T0 + dt.timedelta(minutes=m), "x": x, "channel": c}
            for m, x, c in [(5, 1.0, "web"), (10, None, "app"), (20, 50.0, "tv"),
                            (50, math.nan, "web"),
                            (65, 2.0, "web"), (70, 3.0, None),
                            # hour 2 is empty; hour 3 has six rows
                            *[(185 + i, 4.0, "app") for i in range(6)]]]
    windows = list(complete_windows(T0, T0 + 4 * HOUR, HOUR))
    found = by(evaluate(rows, windows))
    h0, h1, h2, h3 = (T0 + k * HOUR for k in range(4))
    assert found[(h0, "null_share")].value == pytest.approx(0.5)  # None and NaN
    assert found[(h0, "null_share")].status == "red"
    assert found[(h0, "out_of_range_share")].value == pytest.approx(0.5)  # 50 of {1, 50}
    assert found[(h0, "unaccepted_share")].value == pytest.approx(0.25)  # tv
    assert found[(h1, "null_share")].status == "ok"
    assert found[(h0, "freshness_seconds")].value == 600  # newest at :50, end at 1:00
    assert found[(h2, "freshness_seconds")].value == 3600 + 50 * 60  # newest at 1:10
    assert found[(h2, "freshness_seconds")].status == "red"
    assert found[(h0, "volume_ratio")].status == "unknown"  # nothing before it
    assert found[(h1, "volume_ratio")].value == pytest.approx(0.5)  # 2 against 4
    assert found[(h2, "volume_ratio")].value == 0 and found[(h2, "volume_ratio")].status == \
        "red"
    assert found[(h3, "volume_ratio")].value == pytest.approx(6 / 1)  # against (2 + 0) / 2
    assert found[(h2, "null_share")].status == "unknown"  # an empty window decides nothing


def test_min_rows_makes_a_window_unknown() -> None:
    rows = [{"at": T0 + dt.timedelta(minutes=1), "x": None, "channel": "web"}]
    found = evaluate(rows, [Window(T0, T0 + HOUR)], monitor=spec(min_rows=5))
    assert {r.statistic: r.status for r in found}["null_share"] == "unknown"


def test_schema_changes_are_counted_against_the_schema_kept_before() -> None:
    rows = [{"at": T0, "x": 1.0, "channel": "web"}]
    schema_rule = (Rule(kind="schema"),)
    before = {"event_time": "TIMESTAMP WITH TIME ZONE", "x": "BIGINT", "gone": "VARCHAR"}
    (row,) = evaluate(rows, [Window(T0, T0 + HOUR)], monitor=spec(schema_rule),
                      schema_before=before)
    assert row.value == 3 and row.status == "red"  # channel added, gone removed, x retyped
    (first,) = evaluate(rows, [Window(T0, T0 + HOUR)], monitor=spec(schema_rule))
    assert first.value == 0 and first.status == "ok"


def test_an_unknown_column_is_one_line() -> None:
    with pytest.raises(MonitorSpecError, match="no column 'nope'"):
        evaluate([], [Window(T0, T0 + HOUR)],
                 monitor=spec((Rule(kind="null_share", column="nope"),)))


def test_windows_before_1970_hold_their_own_rows() -> None:
    # DuckDB's // truncates toward zero: 23:30 on 1969-12-31 must stay in the 23:00 hour.
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    rows = [{"at": epoch - dt.timedelta(minutes=30), "x": None, "channel": "web"},
            {"at": epoch + dt.timedelta(minutes=30), "x": 1.0, "channel": "web"}]
    windows = list(complete_windows(epoch - HOUR, epoch + HOUR, HOUR))
    found = by(evaluate(rows, windows))
    before, after = found[(epoch - HOUR, "null_share")], found[(epoch, "null_share")]
    assert (before.rows, before.value) == (1, 1.0)
    assert (after.rows, after.value) == (1, 0.0)
    assert found[(epoch - HOUR, "freshness_seconds")].value == 30 * 60


def test_the_text_nan_is_a_value_not_a_null() -> None:
    rows = [{"at": T0, "x": 1.0, "channel": "nan"}, {"at": T0, "x": 1.0, "channel": None}]
    (row,) = evaluate(rows, [Window(T0, T0 + HOUR)],
                      monitor=spec((Rule(kind="null_share", column="channel"),)))
    assert row.value == pytest.approx(0.5)


def test_a_range_on_a_list_column_is_one_line() -> None:
    table = pa.table({"event_time": pa.array([T0], pa.timestamp("us", "UTC")),
                      "xs": pa.array([[1, 2]], pa.list_(pa.int64()))})
    con = duckdb_connection()
    con.register("t", table)
    try:
        with pytest.raises(MonitorSpecError, match="range on xs, a BIGINT\\[\\] column"):
            evaluate_quality(con, spec((Rule(kind="range", column="xs", low=0.0),)),
                             relation="t", timestamp="event_time",
                             windows=[Window(T0, T0 + HOUR)])
    finally:
        con.close()


row_strategy = st.fixed_dictionaries({
    "minute": st.integers(0, 5 * 60 - 1),
    "x": st.one_of(st.none(), st.floats(-5, 15, allow_nan=False), st.just(math.nan)),
    "channel": st.one_of(st.none(), st.sampled_from(["web", "app", "tv"]))})


@settings(max_examples=60, deadline=None)
@given(st.lists(row_strategy, max_size=40))
def test_rules_agree_with_a_plain_computation(raw: list[dict[str, Any]]) -> None:
    rows = [{"at": T0 + dt.timedelta(minutes=r["minute"]), "x": r["x"],
             "channel": r["channel"]} for r in raw]
    windows = list(complete_windows(T0, T0 + 5 * HOUR, HOUR))
    found = by(evaluate(rows, windows))
    for w in windows:
        inside = [r for r in rows if w.start <= r["at"] < w.end]
        xs = [r["x"] for r in inside]
        present = [x for x in xs if x is not None and not math.isnan(x)]
        nulls = len(xs) - len(present)
        assert found[(w.start, "null_share")].value == (
            pytest.approx(nulls / len(xs)) if xs else None)
        outside = [x for x in present if x < 0 or x > 10]
        assert found[(w.start, "out_of_range_share")].value == (
            pytest.approx(len(outside) / len(present)) if present else None)
        channels = [r["channel"] for r in inside if r["channel"] is not None]
        bad = [c for c in channels if c not in ("web", "app")]
        assert found[(w.start, "unaccepted_share")].value == (
            pytest.approx(len(bad) / len(channels)) if channels else None)
        earlier = [r["at"] for r in rows if r["at"] <= w.end]  # at or before its end
        fresh = found[(w.start, "freshness_seconds")].value
        assert fresh == ((w.end - max(earlier)).total_seconds() if earlier else None)
        assert found[(w.start, "null_share")].rows == len(inside)
