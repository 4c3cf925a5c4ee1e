"""Bad rows are recoverable: after a schema fix or through a fix-up function, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.project import Project
from tests.helpers import PAGE_VIEW, page_view, write_schema


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def test_rows_rejected_for_a_missing_property_recover_after_a_minor_version(
        project: Project) -> None:
    late = "iglu:com.example/page_view/jsonschema/1-1-0"
    rejected = [{"schema": late, "data": {"user_id": f"u{i}", "url": "/", "device": "ios"}}
                for i in range(3)]
    assert project.ingest([*rejected, page_view(1)]).rejected == 3
    newer = json.loads((project.root / "schemas/com.example/page_view/jsonschema/1-0-0")
                       .read_text())
    newer["properties"]["device"] = {"type": "string"}
    newer["self"]["version"] = "1-1-0"
    write_schema(project.root, late, newer)
    project.apply()
    report = project.log.recover()
    assert (report.considered, report.recovered, report.still_bad) == (3, 3, 0)
    assert project.log.read("com.example/page_view").num_rows == 4
    again = project.log.recover()
    assert (again.considered, again.recovered) == (0, 0)
    assert project.log.read("com.example/page_view").num_rows == 4


def test_a_fix_up_function_repairs_rows_and_others_stay_bad(project: Project) -> None:
    broken = [{"schema": PAGE_VIEW, "data": {"userId": f"u{i}", "url": "/"}} for i in range(4)]
    project.ingest([*broken, {"schema": PAGE_VIEW, "data": {"url": 3}}, "{oops"])

    def fix(event: Any) -> Any:
        if isinstance(event, dict) and "userId" in event.get("data", {}):
            data = dict(event["data"])
            data["user_id"] = data.pop("userId")
            return {**event, "data": data}
        return None

    dry = project.log.recover(fix, dry_run=True)
    assert (dry.considered, dry.recovered, dry.still_bad, dry.skipped) == (6, 4, 0, 2)
    assert project.log.read("com.example/page_view").num_rows == 0  # a dry run writes nothing
    report = project.log.recover(fix)
    assert (report.recovered, report.skipped) == (4, 2)
    table = project.log.read("com.example/page_view")
    assert sorted(table.column("user_id").to_pylist()) == ["u0", "u1", "u2", "u3"]
    # An event that never gave its time happened when it was first received.
    received = project.log.bad_rows().column("received_at").to_pylist()
    assert set(table.column("event_time").to_pylist()) <= set(received)
    assert set(project.log.read("com.example/page_view").column("source").to_pylist()) == {
        "recover"}
    assert project.log.recover(fix).recovered == 0
    assert project.log.bad_rows().num_rows == 6  # bad rows stay, immutable; recovery is noted


def test_recovery_interrupted_before_it_was_noted_does_not_store_twice(
        project: Project) -> None:
    project.ingest([{"schema": PAGE_VIEW, "data": {"userId": "u1", "url": "/"}}])

    def fix(event: Any) -> Any:
        return {**event, "data": {"user_id": "u1", "url": "/"}}

    store, metadata = project.log_store, project.metadata
    bad = project.log.bad_rows().to_pylist()
    # Ingest as recovery would, but "crash" before claiming the bad row.
    from flywheel._core.ids import derived_id

    items = [fix(json.loads(bad[0]["raw"]))]
    project.ingestor.ingest_with_ids(items, [bad[0]["raw"]],
                                     [derived_id("bad-row", bad[0]["bad_row_id"])],
                                     door="recover")
    assert store.read(project.log.table("com.example/page_view")).num_rows == 1
    report = project.log.recover(fix)
    assert report.recovered == 1 and report.result.duplicates == 1
    assert store.read(project.log.table("com.example/page_view")).num_rows == 1
    assert metadata.recovered_ids() == {bad[0]["bad_row_id"]}
