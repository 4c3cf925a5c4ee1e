"""Replay: every derived table rebuilt from offset 0 as a new version; deterministic; a
changed transform reproduces its new logic over all history while old versions stay
readable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.project import Project
from tests.transforms.support import (
    CHAIN,
    LOG,
    event,
    hashes,
    ingest_ok,
    inputs_of,
    log_head,
    new_project,
    py_transform,
    rows,
    sql_transform,
    write_chain,
)

EVENTS = [event(i, ("ann", "bob", "cy")[i % 3], (i * 7919) % 5000, url=f"/p{i % 4}")
          for i in range(30)]
"""Event times out of order with the ids, so later batches hold late events."""
BATCHES = [EVENTS[:10], EVENTS[10:11], EVENTS[11:25], EVENTS[25:]]


def _build_in_batches(project: Project) -> None:
    write_chain(project.root)
    for batch in BATCHES:
        ingest_ok(project, batch)
        project.transform()


def _versions(project: Project) -> dict[str, int | None]:
    return {name: project.tables.version(name) for name in CHAIN}


# Determinism -----------------------------------------------------------------------------
def test_replaying_twice_gives_identical_content(project: Project) -> None:
    _build_in_batches(project)
    built = hashes(project, CHAIN)

    first = project.replay()
    after_first = hashes(project, CHAIN)
    versions_first = _versions(project)
    second = project.replay()

    assert [run.name for run in first] == list(CHAIN) == [run.name for run in second]
    assert all(run.mode == "full" for run in [*first, *second])
    assert hashes(project, CHAIN) == after_first == built, \
        "replay changed the content of a table built incrementally from the same log"
    assert _versions(project) == {name: (v or 0) + 1 for name, v in versions_first.items()}, \
        "each replay publishes exactly one new version per table"


def test_a_fresh_project_fed_the_same_events_builds_identical_tables(
        project: Project, tmp_path: Path) -> None:
    _build_in_batches(project)
    original = hashes(project, CHAIN)

    with new_project(tmp_path / "fresh") as fresh:
        write_chain(fresh.root)
        ingest_ok(fresh, list(reversed(EVENTS)))  # one batch, another order
        fresh.transform()
        assert {name: rows(fresh, name) for name in CHAIN} == {
            name: rows(project, name) for name in CHAIN}
        assert hashes(fresh, CHAIN) == original
        fresh.replay()
        assert hashes(fresh, CHAIN) == original


def test_content_hash_ignores_row_order_but_not_content(project: Project) -> None:
    sql_transform(project.root, "users", "select user_id from page_view order by user_id",
                  inputs=LOG)
    ingest_ok(project, [event(1, "ann", 0), event(2, "bob", 0)])
    project.transform()
    ascending = project.tables.content_hash("users")
    sql_transform(project.root, "users", "select user_id from page_view order by user_id desc",
                  inputs=LOG)
    project.transform()
    assert project.tables.content_hash("users") == ascending
    ingest_ok(project, [event(3, "ann", 0)])
    project.transform()
    assert project.tables.content_hash("users") != ascending, "a repeated row counts"


# Replay writes a new version -------------------------------------------------------------
def test_replay_records_full_builds_from_offset_zero(project: Project) -> None:
    _build_in_batches(project)
    assert inputs_of(project, "views")["pv"]["after"] > -1, "the last run was incremental"
    before = _versions(project)

    project.replay()

    head = log_head(project)
    after = _versions(project)
    for name in CHAIN:
        assert (after[name] or 0) > (before[name] or 0), f"{name}: no new version"
        record = project.metadata.table_versions(name)[-1]
        assert (record.version, record.mode) == (after[name], "full")
    assert inputs_of(project, "views") == {
        "pv": {"kind": "log", "target": f"{LOG}", "after": -1, "upto": head}}
    latest = inputs_of(project, "latest")["views"]
    assert (latest["after"], latest["upto"]) == (-1, after["views"]), \
        "a replayed table reads the upstream version published by the same replay"
    stats = inputs_of(project, "user_stats")
    assert {alias: (s["after"], s["upto"]) for alias, s in stats.items()} == {
        "views": (-1, after["views"]), "latest": (-1, after["latest"])}
    lineage = project.lineage("views")
    assert lineage.mode == "full" and lineage.version == after["views"]
    assert [(n.after, n.upto) for n in lineage.inputs] == [(-1, head)]


def test_every_older_version_stays_readable(project: Project) -> None:
    _build_in_batches(project)
    records = project.metadata.table_versions("views")
    counts_before = {r.version: project.tables.read("views", r.version).num_rows
                     for r in records}
    hashes_before = {r.version: project.tables.content_hash("views", r.version)
                     for r in records}
    assert list(counts_before.values()) == [10, 11, 25, 30], \
        "each incremental version holds the rows up to its offsets"

    project.replay()

    assert {v: project.tables.read("views", v).num_rows for v in counts_before} == counts_before
    assert {v: project.tables.content_hash("views", v) for v in hashes_before} == hashes_before
    assert project.tables.read("views").num_rows == 30


# A changed transform, replayed -----------------------------------------------------------
def test_a_changed_transform_replays_its_new_logic_over_all_history(project: Project) -> None:
    _build_in_batches(project)
    old_version = project.tables.version("views")
    old_rows = rows(project, "views")
    old_hash = project.tables.content_hash("views")
    old_code = project.lineage("views").code_hash
    old_stats = rows(project, "user_stats")
    assert old_version is not None

    sql_transform(project.root, "views", """
        select event_id, upper(user_id) as user_id, url || '?v2' as url, event_time,
               date_trunc('hour', event_time) as hour
        from pv
        """, inputs=f"pv={LOG}", materialized="incremental")
    project.replay()

    new_rows = rows(project, "views")
    assert len(new_rows) == len(EVENTS)
    assert all(r["user_id"] in ("ANN", "BOB", "CY") and r["url"].endswith("?v2")
               for r in new_rows), "rows from early batches must get the new logic too"
    assert {r["user_id"] for r in rows(project, "latest")} == {"ANN", "BOB", "CY"}
    assert all(r["last_url"].endswith("?v2") for r in rows(project, "user_stats"))
    new_version = project.tables.version("views")
    assert new_version is not None and new_version > old_version
    assert project.lineage("views").code_hash != old_code

    assert rows(project, "views", version=old_version) == old_rows, \
        "the version before the replay must stay readable, with its old content"
    assert project.tables.content_hash("views", old_version) == old_hash
    previous_stats = project.metadata.table_versions("user_stats")[-2].version
    assert rows(project, "user_stats", version=previous_stats) == old_stats


def test_a_changed_python_transform_replays_its_new_logic(project: Project) -> None:
    _build_in_batches(project)
    old_version = project.tables.version("latest")
    old_rows = rows(project, "latest", order_by=["user_id"])
    source = (project.root / "transforms" / "latest.py").read_text()
    changed = source.replace('pc.utf8_length(views["url"])',
                             'pc.multiply(pc.utf8_length(views["url"]), 10)')
    assert changed != source
    py_transform(project.root, "latest.py", changed)

    project.replay()

    new_rows = rows(project, "latest", order_by=["user_id"])
    assert [r["url_length"] for r in new_rows] == [r["url_length"] * 10 for r in old_rows]
    assert rows(project, "latest", version=old_version, order_by=["user_id"]) == old_rows


def test_a_changed_incremental_transform_rebuilds_fully_without_replay(
        project: Project) -> None:
    """Changed code is never applied to new rows only: the next run rebuilds the table."""
    _build_in_batches(project)
    sql_transform(project.root, "views", """
        select event_id, user_id || '!' as user_id, url, event_time,
               date_trunc('hour', event_time) as hour
        from pv
        """, inputs=f"pv={LOG}", materialized="incremental")
    runs: dict[str, Any] = {run.name: run.mode for run in project.transform()}
    assert runs["views"] == "full"
    assert all(r["user_id"].endswith("!") for r in rows(project, "views"))
