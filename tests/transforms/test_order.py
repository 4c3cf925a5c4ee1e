"""Sorted writes: `order_by` and the sort a feature view asks of its source table."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from flywheel.project import Project
from flywheel.transforms.definitions import parse_sql
from tests.transforms.support import LOG, event, ingest_ok, sql_transform


def _rows_in_file_order(project: Project, table: str) -> list[tuple[str, str]]:
    handle = project.tables.handle(table)
    rows: list[tuple[str, str]] = []
    for uri in handle.dataset(handle.version()).files:
        data = pq.read_table(uri, columns=["user_id", "event_time"])
        rows += list(zip(data.column("user_id").to_pylist(),
                         [str(t) for t in data.column("event_time").to_pylist()], strict=True))
    return rows


def _events(start: int, count: int) -> list[dict[str, object]]:
    # Users and times interleaved, so that arrival order is far from sorted.
    return [event(n, f"u{(n * 7) % 5}", 1000 - n) for n in range(start, start + count)]


def test_order_by_sorts_each_build_and_keeps_the_hash_without_it(project: Project) -> None:
    sql_transform(project.root, "views", "select user_id, event_time from page_view",
                  inputs=LOG, materialized="incremental", order_by="user_id, event_time")
    ingest_ok(project, _events(0, 40))
    project.transform()
    first = _rows_in_file_order(project, "views")
    assert first == sorted(first)
    ingest_ok(project, _events(40, 30))
    project.transform()  # incremental: the appended rows are sorted among themselves
    appended = _rows_in_file_order(project, "views")[len(first):]
    assert len(appended) == 30 and appended == sorted(appended)


def test_order_by_joins_the_code_hash_only_when_set(tmp_path: Path) -> None:
    plain = tmp_path / "a.sql"
    plain.write_text(f"-- inputs: {LOG}\nselect 1\n")
    ordered = tmp_path / "b.sql"
    ordered.write_text(f"-- name: a\n-- inputs: {LOG}\n-- order_by: x\nselect 1\n")
    assert parse_sql(plain).code_hash != parse_sql(ordered).code_hash
    assert parse_sql(ordered).order_by == ("x",)


def test_a_feature_views_source_is_written_by_entity_and_time(project: Project) -> None:
    sql_transform(project.root, "visits", "select user_id, url, event_time from page_view",
                  inputs=LOG)
    (project.root / "features.yaml").write_text(
        "entities: [{name: user, join_keys: [user_id]}]\n"
        "feature_views: [{name: visits, entities: [user], source: visits, features: [url]}]\n")
    ingest_ok(project, _events(0, 50))
    project.transform()
    rows = _rows_in_file_order(project, "visits")
    assert len(rows) == 50 and rows == sorted(rows)
