"""The SDK door: strict validation, typed columns, at-most-once, nothing dropped."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flywheel.project import Project
from tests.helpers import PAGE_VIEW, object_schema, page_view, write_schema

ORDER = "iglu:com.acme/order/jsonschema/1-0-0"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_schema(project_dir, ORDER, object_schema({
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "items": {"type": "integer"},
        "paid_at": {"type": "string", "format": "date-time"},
        "address": {"type": "object", "additionalProperties": False,
                    "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}},
        "meta": {"type": "object"},
    }, ["order_id", "amount"], additional=True))
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def order(i: int, **data: Any) -> dict[str, Any]:
    return {"schema": ORDER, "data": {"order_id": f"o{i}", "amount": 10.5, **data}}


def test_counts_add_up_and_errors_say_why(project: Project) -> None:
    events: list[Any] = [page_view(1), page_view(2), {"schema": PAGE_VIEW, "data": {"url": "x"}},
                         "not an event", {"schema": "iglu:com.acme/ghost/jsonschema/1-0-0",
                                          "data": {}}, {**page_view(3), "colour": "red"}]
    result = project.ingest(events)
    assert (result.accepted, result.rejected, result.duplicates) == (2, 4, 0)
    assert result.received == len(events)
    kinds = {e.index: e.reason for e in result.errors}
    assert kinds == {2: "schema_violation", 3: "bad_envelope", 4: "unknown_schema",
                     5: "bad_envelope"}
    violation = next(e for e in result.errors if e.index == 2)
    assert violation.errors[0]["rule"] == "required"
    assert "user_id" in violation.message
    bad = project.log.bad_rows()
    assert bad.num_rows == 4
    assert sorted(bad.column("reason").to_pylist()) == sorted(kinds.values())
    raws = {r.decode() for r in bad.column("raw").to_pylist()}
    assert '"not an event"' in raws  # the input as received, re-encoded as JSON


def test_an_event_id_is_stored_at_most_once(project: Project) -> None:
    first = project.ingest([page_view(1, event_id="a"), page_view(2, event_id="a"),
                            page_view(3, event_id="b")])
    assert (first.accepted, first.duplicates) == (2, 1)
    again = project.ingest([page_view(1, event_id="a"), page_view(4, event_id="c")])
    assert (again.accepted, again.duplicates) == (1, 1)
    ids = project.log.read("com.example/page_view").column("event_id").to_pylist()
    assert sorted(ids) == ["a", "b", "c"]


def test_generated_ids_are_unique_uuids_and_resending_them_is_safe(project: Project) -> None:
    project.ingest([page_view(i) for i in range(500)])
    table = project.log.read("com.example/page_view")
    ids = table.column("event_id").to_pylist()
    assert len(set(ids)) == 500
    assert all(uuid.UUID(i).version == 4 for i in ids)
    exported = [{"schema": PAGE_VIEW, "event_id": row["event_id"],
                 "data": {"user_id": row["user_id"], "url": row["url"]}}
                for row in table.to_pylist()]
    result = project.ingest([*exported[:10], page_view(999, event_id=ids[0][:-1] + "x")])
    assert (result.accepted, result.duplicates) == (1, 10)


def test_columns_are_typed_and_nothing_undeclared_is_lost(project: Project) -> None:
    result = project.ingest([order(1, items=3, paid_at="2026-03-01T12:00:00+02:00",
                                   address={"city": "Lyon", "zip": "69001"},
                                   meta={"a": [1, 2]}, coupon="SPRING")])
    assert result.accepted == 1, result.errors
    row = project.log.read("com.acme/order").to_pylist()[0]
    assert row["items"] == 3
    assert row["paid_at"] == dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
    assert row["address"] == {"city": "Lyon", "zip": "69001"}
    assert json.loads(row["meta"]) == {"a": [1, 2]}
    assert json.loads(row["_extra"]) == {"coupon": "SPRING"}
    assert row["source"] == "sdk"


def test_values_arrow_cannot_hold_become_bad_rows(project: Project) -> None:
    result = project.ingest([order(1, items=2**70), order(2, items=1),
                             order(3, paid_at="2026-02-30T00:00:00Z")])
    assert result.accepted == 1
    assert {e.index for e in result.errors} == {0, 2}
    assert project.log.bad_rows().num_rows == 2


def test_event_time_must_have_a_zone_and_not_be_far_ahead(project: Project) -> None:
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    result = project.ingest([page_view(1, event_time="2026-01-01T00:00:00"),
                             page_view(2, event_time=future),
                             page_view(3, event_time="2026-01-01T05:00:00-05:00"),
                             page_view(4, event_time=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))])
    assert result.accepted == 2
    assert {e.index: e.reason for e in result.errors} == {0: "bad_envelope", 1: "bad_envelope"}
    times = sorted(project.log.read("com.example/page_view").column("event_time").to_pylist())
    assert times == [dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC),
                     dt.datetime(2026, 1, 2, tzinfo=dt.UTC)]
    dates = project.log.read("com.example/page_view").column("event_date").to_pylist()
    assert sorted(dates) == [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]


def test_too_large_events_are_kept_as_bad_rows(project: Project) -> None:
    limit = project.config.ingest.max_event_bytes
    result = project.ingest([order(1, note="x" * limit)])
    assert result.errors[0].reason == "too_large"
    assert len(project.log.bad_rows().column("raw")[0].as_py()) > limit


def test_a_new_minor_version_adds_a_column_to_the_same_table(project: Project) -> None:
    project.ingest([page_view(1)])
    newer = json.loads((project.root / "schemas/com.example/page_view/jsonschema/1-0-0")
                       .read_text())
    newer["properties"]["device"] = {"type": "string"}
    newer["self"]["version"] = "1-1-0"
    write_schema(project.root, "iglu:com.example/page_view/jsonschema/1-1-0", newer)
    project.apply()
    event = {"schema": "iglu:com.example/page_view/jsonschema/1-1-0",
             "data": {"user_id": "u2", "url": "/", "device": "ios"}}
    assert project.ingest([event]).accepted == 1
    rows = sorted(project.log.read("com.example/page_view").to_pylist(),
                  key=lambda r: r["user_id"])
    assert [r["device"] for r in rows] == [None, "ios"]
    assert [r["schema"][-5:] for r in rows] == ["1-0-0", "1-1-0"]
    first_offset_rows = project.log.read("com.example/page_view/v1", as_of=1)
    assert first_offset_rows.num_rows == 1
    assert "device" not in first_offset_rows.column_names  # time travel sees the old shape


def test_big_batches_stream_in_chunks_with_progress(project: Project) -> None:
    seen: list[int] = []
    result = project.ingestor.ingest((page_view(i) for i in range(2_500)), chunk_size=1_000,
                                     on_progress=seen.append)
    assert result.accepted == 2_500
    assert seen == [1_000, 1_000, 500]
    assert project.log.read("com.example/page_view").num_rows == 2_500


def test_reading_an_offset_that_does_not_exist_is_a_clear_error(project: Project) -> None:
    project.ingest([page_view(1)])
    with pytest.raises(Exception, match=r"offsets 0\.\.1"):
        project.log.read("com.example/page_view", as_of=7)
    assert isinstance(project.log.read("com.example/page_view", as_of=0), pa.Table)
