"""`flywheel schemas infer`: existing data comes in with infer, apply and ingest."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.project import Project

from .conftest import Invoke, assert_one_line_error, counts

SCHEMA_FILE = Path("schemas/com.acme/orders/jsonschema/1-0-0")


def _orders(path: Path) -> Path:
    stamps = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(3)]
    pq.write_table(pa.table({
        "order_id": ["o1", "o2", "o3"], "quantity": pa.array([1, 2, 3], pa.int32()),
        "price": [1.5, None, 3.0], "gift": [True, False, True],
        "day": pa.array([dt.date(2026, 1, 1)] * 3, pa.date32()),
        "created_at": stamps}), path)
    return path


def test_infer_apply_ingest(cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    source = _orders(tmp_path / "orders.parquet")
    result = cli("schemas", "infer", str(source), "--name", "com.acme/orders",
                 "--time-column", "created_at")
    assert result.exit_code == 0, result.output
    document = json.loads((project_dir / SCHEMA_FILE).read_text())
    assert document["properties"] == {
        "order_id": {"type": "string"}, "quantity": {"type": "integer"},
        "price": {"type": "number"}, "gift": {"type": "boolean"},
        "day": {"type": "string", "format": "date"}}
    assert document["required"] == ["order_id", "quantity", "gift", "day"]
    assert document["additionalProperties"] is False
    assert "--time-column created_at" in result.stderr
    assert cli("apply").exit_code == 0
    ingested = cli("ingest", str(source), "--schema", "com.acme/orders",
                   "--time-column", "created_at")
    assert counts(ingested) == {"received": 3, "accepted": 3, "rejected": 0, "duplicates": 0}
    with Project.open(project_dir) as project:
        rows = project.log.read("com.acme/orders").to_pylist()
    assert sorted(r["event_time"].hour for r in rows) == [0, 1, 2]


def test_infer_does_not_overwrite_without_force(cli: Invoke, project_dir: Path,
                                                tmp_path: Path) -> None:
    source = _orders(tmp_path / "orders.parquet")
    args = ("schemas", "infer", str(source), "--name", "com.acme/orders")
    assert cli(*args).exit_code == 0
    assert "exists; pass --force" in assert_one_line_error(cli(*args))
    assert cli(*args, "--force").exit_code == 0


def test_infer_csv_to_stdout(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "sales.csv"
    source.write_text("id,qty,amount,paid,at,day,note\n"
                      "1,2,3,yes,2026-01-01T00:00:00Z,2026-01-01,a\n"
                      "2,,4.5,no,2026-01-02T00:00:00+01:00,2026-01-02,\n")
    result = cli("schemas", "infer", str(source), "--name", "com.acme/sales", "--id-column",
                 "id", "--time-column", "at", "-o", "-")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["properties"] == {
        "qty": {"type": "integer"}, "amount": {"type": "number"}, "paid": {"type": "boolean"},
        "day": {"type": "string", "format": "date"}, "note": {"type": "string"}}
    assert document["required"] == ["amount", "paid", "day"]


def test_what_the_log_cannot_hold_exactly_is_reported(cli: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "odd.parquet"
    pq.write_table(pa.table({
        "event_time": pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("ns")),
        "amount": pa.array([Decimal("1.10")], pa.decimal128(10, 2)),
        "big": pa.array([1], pa.uint64())}), source)
    result = cli("schemas", "infer", str(source), "--name", "com.acme/odd", "-o", "-")
    assert result.exit_code == 0, result.output
    assert "amount: decimal128(10, 2) values are stored as 64-bit floats" in result.stderr
    assert "big: values above 9223372036854775807" in result.stderr
    assert "event_time" not in json.loads(result.stdout)["properties"]


@pytest.mark.parametrize(("table", "says"), [
    ({"source": ["web"], "event_time": ["2026-01-01T00:00:00Z"]},
     "column source has the name of an envelope column"),
    ({"blob": pa.array([b"\x00"], pa.binary())}, "column blob holds binary values"),
    ({"Name": ["a"], "name": ["b"]}, "differ only in case"),
])
def test_columns_no_property_can_hold_are_one_line(cli: Invoke, tmp_path: Path,
                                                   table: dict[str, object], says: str) -> None:
    source = tmp_path / "bad.parquet"
    pq.write_table(pa.table(table), source)
    line = assert_one_line_error(cli("schemas", "infer", str(source), "--name", "a.b/c"))
    assert says in line


@pytest.mark.parametrize(("args", "says"), [
    (["--name", "nameonly"], "expected vendor/name"),
    (["--name", "a.b/c", "--time-column", "nope"], "no such column"),
])
def test_bad_infer_options_are_one_line(cli: Invoke, tmp_path: Path, args: list[str],
                                        says: str) -> None:
    source = _orders(tmp_path / "orders.parquet")
    assert says in assert_one_line_error(cli("schemas", "infer", str(source), *args))
