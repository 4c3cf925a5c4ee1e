"""get_historical_features against a brute-force reference on random data: ties, nulls,
TTL edges, several views, out-of-order rows, unknown and repeated entity rows."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.features.definitions import Entity, FeatureView
from flywheel.features.offline import historical_features
from flywheel.transforms.store import DerivedTables

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
USER = Entity(name="user", join_keys=["user_id"])
SKU = Entity(name="sku", join_keys=["sku"])


def at(seconds: int) -> dt.datetime:
    return BASE + dt.timedelta(seconds=seconds)


users = st.sampled_from(["u1", "u2", "u3"])
skus = st.sampled_from(["a", "b"])
times = st.integers(0, 20)  # a coarse grid: ties and TTL edges are common
values = st.none() | st.integers(-3, 3)

user_rows = st.lists(st.fixed_dictionaries({
    "user_id": users, "ts": times | st.none(), "clicks": values, "spend": values,
    "created": st.none() | st.integers(0, 3)}), max_size=25)
sku_rows = st.lists(st.fixed_dictionaries({
    "user_id": users, "sku": skus, "ts": times, "price": values}), max_size=15)
entity_rows = st.lists(st.fixed_dictionaries({
    "user_id": users | st.just("nobody"), "sku": skus, "t": times}), min_size=1, max_size=12)


def _expected(rows: list[dict[str, Any]], keys: list[str], entity: dict[str, Any],
              features: list[str], ttl: int | None, created: str | None) -> dict[str, Any]:
    when = entity["t"]
    candidates = [r for r in rows if all(r[k] == entity[k] for k in keys)
                  and r["ts"] is not None and r["ts"] <= when]
    if not candidates:
        return dict.fromkeys(features)
    newest = max(r["ts"] for r in candidates)
    tied = [r for r in candidates if r["ts"] == newest]
    for column in reversed(([created] if created else []) + features):
        known = sorted((r for r in tied if r[column] is not None), key=lambda r: r[column],
                       reverse=True)
        tied = known + [r for r in tied if r[column] is None]
    if ttl is not None and newest < when - ttl:
        return dict.fromkeys(features)
    return {f: tied[0][f] for f in features}


def _table(rows: list[dict[str, Any]], columns: dict[str, pa.DataType]) -> pa.Table:
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for row in rows:
        for column in columns:
            value = row[column if column != "event_time" else "ts"]
            data[column].append(at(value) if column == "event_time" and value is not None
                                else value)
    return pa.table({c: pa.array(v, t) for (c, t), v in zip(columns.items(), data.values(),
                                                             strict=True)})


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(user_rows=user_rows, sku_rows=sku_rows, entities=entity_rows,
       ttl=st.none() | st.integers(1, 6), use_created=st.booleans())
def test_matches_a_brute_force_reference(user_rows: list[dict[str, Any]],
                                         sku_rows: list[dict[str, Any]],
                                         entities: list[dict[str, Any]], ttl: int | None,
                                         use_created: bool) -> None:
    timestamp = pa.timestamp("us", tz="UTC")
    created = "created" if use_created else None
    views = {
        "user_stats": FeatureView(name="user_stats", entities=[USER], source="user_stats",
                                  features=["clicks", "spend"], created_column=created,
                                  ttl=None if ttl is None else dt.timedelta(seconds=ttl)),
        "prices": FeatureView(name="prices", entities=[USER, SKU], source="prices",
                              features=["price"]),
    }
    with tempfile.TemporaryDirectory() as folder:
        tables = DerivedTables(str(Path(folder)))
        tables.handle("user_stats").overwrite(_table(user_rows, {
            "user_id": pa.string(), "event_time": timestamp, "clicks": pa.int64(),
            "spend": pa.int64(), "created": pa.int64()}))
        tables.handle("prices").overwrite(_table(sku_rows, {
            "user_id": pa.string(), "sku": pa.string(), "event_time": timestamp,
            "price": pa.int64()}))
        entity = pa.table({"user_id": [e["user_id"] for e in entities],
                           "sku": [e["sku"] for e in entities],
                           "event_timestamp": pa.array([at(e["t"]) for e in entities],
                                                       timestamp)})
        result = historical_features(entity, {"user_stats": ["clicks", "spend"],
                                               "prices": ["price"]}, views, tables)
    got = result.to_arrow().to_pylist()
    assert len(got) == len(entities)
    for row, e in zip(got, entities, strict=True):
        assert (row["user_id"], row["sku"]) == (e["user_id"], e["sku"])  # order is kept
        want = {**_expected(user_rows, ["user_id"], e, ["clicks", "spend"], ttl, created),
                **_expected(sku_rows, ["user_id", "sku"], e, ["price"], None, None)}
        assert {k: row[k] for k in want} == want, (e, want)
    assert set(result.table_versions) == {"user_stats", "prices"}


def test_a_value_from_the_future_is_never_used(tmp_path: Path) -> None:
    tables = DerivedTables(str(tmp_path))
    tables.handle("s").overwrite(pa.table({
        "user_id": ["u1", "u1"], "event_time": pa.array([at(10), at(20)],
                                                        pa.timestamp("us", tz="UTC")),
        "clicks": [1, 2]}))
    view = FeatureView(name="s", entities=[USER], source="s", features=["clicks"])
    entity = pa.table({"user_id": ["u1", "u1", "u1"],
                       "event_timestamp": [at(9), at(19), at(20)]})
    result = historical_features(entity, {"s": ["clicks"]}, {"s": view}, tables)
    assert result.to_arrow().column("clicks").to_pylist() == [None, 1, 2]


class _Cursors:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0

    def get_cursor(self, name: str) -> str | None:
        self.reads += 1
        return self.values.get(name)

    def set_cursor(self, name: str, value: str) -> None:
        self.values[name] = value


def test_ties_are_probed_once_per_table_version(tmp_path: Path) -> None:
    tables = DerivedTables(str(tmp_path))
    stamp = pa.timestamp("us", tz="UTC")
    tables.handle("s").overwrite(pa.table({
        "user_id": ["u1", "u2"], "event_time": pa.array([at(10), at(10)], stamp),
        "clicks": [1, 2]}))
    view = FeatureView(name="s", entities=[USER], source="s", features=["clicks"])
    entity = pa.table({"user_id": ["u1", "u2"], "event_timestamp": [at(11), at(11)]})
    index = _Cursors()
    first = historical_features(entity, {"s": ["clicks"]}, {"s": view}, tables, ties=index)
    assert list(index.values.values()) == ["0"]  # no two rows share a key and a time
    again = historical_features(entity, {"s": ["clicks"]}, {"s": view}, tables, ties=index)
    assert first.to_arrow() == again.to_arrow()
    # A new version with a tie is probed afresh, and the tie is broken deterministically.
    tables.handle("s").overwrite(pa.table({
        "user_id": ["u1", "u1", "u2"], "event_time": pa.array([at(10)] * 3, stamp),
        "clicks": [5, 7, 2]}))
    tied = historical_features(entity, {"s": ["clicks"]}, {"s": view}, tables, ties=index)
    assert sorted(index.values.values()) == ["0", "1"]
    assert tied.to_arrow().column("clicks").to_pylist() == [7, 2]
