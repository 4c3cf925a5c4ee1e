"""The file door from the SDK: `Project.ingest_file` with NDJSON, CSV and Parquet."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel._core.errors import InputError, UnknownSchemaError
from flywheel.ingest.file_report import IngestInterrupted
from flywheel.ingest.inputs import Advance, Format
from flywheel.project import Project
from tests.helpers import PAGE_VIEW, object_schema, page_view, write_schema

ORDER = "iglu:com.acme/order/jsonschema/1-0-0"
ORDERS = "com.acme/order"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_schema(project_dir, ORDER, object_schema({
        "order_id": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
        "price": {"type": "number"},
    }, ["order_id", "quantity"]))
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def _stored(project: Project, table: str, column: str) -> list[Any]:
    return sorted(project.log.read(table).column(column).to_pylist())


def test_ndjson_rows_land_in_the_log_and_rejects_are_located_by_line(
        project: Project, tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    lines = [json.dumps(page_view(1)), "", "{not json",
             json.dumps({"schema": PAGE_VIEW, "data": {"url": "x"}}), json.dumps(page_view(2))]
    source.write_text("\n".join(lines) + "\n")

    report = project.ingest_file(source)

    assert report.format is Format.NDJSON and report.source == str(source)
    result = report.result
    assert (result.accepted, result.rejected, result.duplicates) == (2, 2, 0)
    assert report.by_reason == {"not_json": 1, "schema_violation": 1}
    assert [(e.index, e.at, e.reason) for e in report.first_errors] == [
        (1, "line 3", "not_json"), (2, "line 4", "schema_violation")]
    assert report.seconds > 0
    assert _stored(project, "com.example/page_view", "user_id") == ["u1", "u2"]
    # The rows got ids from the file: sending it again stores nothing twice.
    again = project.ingest_file(source)
    assert (again.result.accepted, again.result.duplicates) == (0, 2)
    assert _stored(project, "com.example/page_view", "user_id") == ["u1", "u2"]


def test_csv_rows_are_events_of_the_newest_version_of_a_family(
        project: Project, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity,price,event_time\n"
                      "o1,2,9.5,2026-01-01T00:00:00Z\n"
                      "o2,0,1.0,2026-01-01T00:00:01Z\n"
                      "o3,1,,2026-01-01T00:00:02Z\n")

    report = project.ingest_file(source, schema=ORDERS)

    assert report.format is Format.CSV and report.name == str(source)
    assert (report.result.accepted, report.result.rejected) == (2, 1)
    assert report.by_reason == {"schema_violation": 1}
    (first,) = report.first_errors
    assert (first.index, first.at, first.reason) == (1, "row 2", "schema_violation")
    assert "quantity" in first.message
    assert _stored(project, ORDERS, "order_id") == ["o1", "o3"]
    stored = project.log.read(ORDERS).to_pylist()
    assert {row["order_id"]: row["price"] for row in stored} == {"o1": 9.5, "o3": None}


def test_parquet_columns_name_the_envelope(project: Project, tmp_path: Path) -> None:
    source = tmp_path / "orders.parquet"
    pq.write_table(pa.table({
        "order_id": ["a1", "a2", "a3"], "quantity": [1, 2, 3], "price": [1.0, 2.0, 3.0],
        "created_at": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "yesterday"],
    }), source)
    positions: list[tuple[str, int | None, str, int]] = []

    @contextmanager
    def record(title: str, total: int | None, unit: str) -> Iterator[Advance]:
        yield lambda position: positions.append((title, total, unit, position))

    report = project.ingest_file(source, schema=ORDER, time_column="created_at",
                                 id_column="order_id", on_progress=record)

    assert report.format is Format.PARQUET
    assert (report.result.accepted, report.result.rejected) == (2, 1)
    assert [e.reason for e in report.first_errors] == ["bad_envelope"]
    assert _stored(project, ORDERS, "event_id") == ["a1", "a2"]
    assert positions and positions[-1] == (f"ingesting {source}", 3, "rows", 3)


def test_a_note_about_the_file_goes_to_the_callable_or_to_logging(
        project: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity,colour,event_time\no1,1,,2026-01-01T00:00:00Z\n"
                      "o2,1,red,2026-01-01T00:00:00Z\n")
    notes: list[str] = []
    report = project.ingest_file(source, schema=ORDER, on_note=notes.append)
    assert len(notes) == 1 and "colour is not declared by" in notes[0]
    assert (report.result.accepted, report.result.rejected) == (1, 1)

    with caplog.at_level(logging.WARNING, logger="flywheel"):
        project.ingest_file(source, schema=ORDER)
    assert [r.getMessage().startswith("colour is not declared") for r in caplog.records] == [
        True]


@pytest.mark.parametrize(("name", "options", "message"), [
    ("events.ndjson", {"time_column": "ts"},
     "--time-column applies to CSV and Parquet rows; NDJSON events carry their own envelope"),
    ("orders.csv", {}, "CSV input needs --schema"),
    ("-", {"fmt": "parquet", "schema": ORDER}, "Parquet cannot be read from standard input"),
    ("events.ndjson", {"schema": ORDER}, "--schema applies to CSV and Parquet rows"),
    ("events.ndjson", {"fmt": "xlsx"}, "unknown format 'xlsx' (known: ndjson, csv, parquet)"),
])
def test_a_bad_option_is_an_input_error_before_anything_is_read(
        project: Project, tmp_path: Path, name: str, options: dict[str, Any],
        message: str) -> None:
    source = name if name == "-" else str(tmp_path / name)
    if name != "-":
        Path(source).write_text(json.dumps(page_view(1)) + "\n")
    with pytest.raises(InputError) as caught:
        project.ingest_file(source, **options)
    assert str(caught.value).startswith(message)
    assert all(stats.events == 0 and not stats.bad_rows for stats in project.log.stats())


def test_an_unregistered_schema_is_refused(project: Project, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("order_id,quantity,event_time\no1,1,2026-01-01T00:00:00Z\n")
    with pytest.raises(UnknownSchemaError, match=r"no version of schema com\.acme/ghost"):
        project.ingest_file(source, schema="com.acme/ghost")


def test_ctrl_c_mid_file_says_what_was_committed_and_keeps_it(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flywheel.ingest.ndjson as ndjson
    from flywheel.ingest.ingestor import Ingestor

    monkeypatch.setattr(ndjson, "CHUNK_LINES", 2)
    original = Ingestor.ingest_raw
    calls: list[int] = []

    def ctrl_c_on_the_second_chunk(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ingestor, "ingest_raw", ctrl_c_on_the_second_chunk)
    source = tmp_path / "events.ndjson"
    source.write_text("\n".join(json.dumps(page_view(i)) for i in range(5)) + "\n")
    with pytest.raises(IngestInterrupted) as caught:
        project.ingest_file(source)
    assert caught.value.message == ("interrupted; at least the first 2 events were committed "
                                    "(2 stored, 0 kept as bad rows)")
    assert _stored(project, "com.example/page_view", "user_id") == ["u0", "u1"]
