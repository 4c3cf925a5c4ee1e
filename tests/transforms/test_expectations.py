"""Quality gates: a candidate version that breaks an expectation is not published, and the
error names the expectation, how many rows broke it, and examples."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from flywheel._core.errors import InputError
from flywheel.project import Project
from flywheel.transforms.expectations import ExpectationFailed
from tests.transforms.support import LOG, event, ingest_ok, inputs_of, rows, sql_transform


@dataclass(frozen=True)
class Case:
    expectation: str
    sql: str
    good: list[dict[str, Any]]
    bad: list[dict[str, Any]]
    count: int
    """Rows (or groups, for unique) the bad batch breaks the expectation on."""
    example: str
    """Text an example in the message shows."""


_GOOD = [event(1, "ann", 0, referrer="r"), event(2, "bob", 0, referrer="r")]
CASES = {
    "not_null": Case(
        "not_null(user_id, referrer)", "select event_id, user_id, referrer from page_view",
        _GOOD, [event(3, "cy", 0), event(4, "dee", 0, referrer="r"), event(5, "eve", 0)],
        2, "'referrer': None"),
    "unique": Case(
        "unique(user_id)", "select user_id, url from page_view",
        _GOOD, [event(3, "ann", 0), event(4, "ann", 0), event(5, "cy", 0)],
        1, "'user_id': 'ann', 'copies': 3"),
    "accepted_values": Case(
        "accepted_values(user_id, ann, bob, 'cy')", "select user_id from page_view",
        _GOOD, [event(3, "cy", 0), event(4, "zed", 0), event(5, "zed", 0)],
        2, "'user_id': 'zed'"),
    "range": Case(
        "range(views, 1, 2)",
        "select user_id, count(*) as views from page_view group by user_id",
        _GOOD, [event(3, "ann", 0), event(4, "ann", 0), event(5, "bob", 0)],
        1, "'views': 3"),
    "range_low_only": Case(
        "range(hour, 10, )",
        "select event_id, hour(event_time) as hour from page_view",
        [event(1, "ann", 11 * 3600), event(2, "bob", 23 * 3600)],
        [event(3, "cy", 12 * 3600), event(4, "dee", 9 * 3600)],
        1, "'event_id': 'e4'"),
    "sql": Case(
        "sql(select user_id, url from this where url like '%admin%')",
        "select user_id, url from page_view",
        _GOOD, [event(3, "cy", 0, url="/admin/users"), event(4, "dee", 0)],
        1, "'url': '/admin/users'"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_each_expectation_passes_good_data_and_refuses_bad(project: Project,
                                                           case: Case) -> None:
    sql_transform(project.root, "checked", case.sql, inputs=LOG, expect=case.expectation)
    ingest_ok(project, case.good)
    (run,) = project.transform()
    assert run.mode == "full"
    version = project.tables.version("checked")
    content = project.tables.content_hash("checked")
    before = rows(project, "checked")
    records = project.metadata.table_versions("checked")

    ingest_ok(project, case.bad)
    with pytest.raises(ExpectationFailed) as caught:
        project.transform()

    message = str(caught.value)
    assert case.expectation in message, "the message names the expectation"
    assert f"failed on {case.count} row(s)" in message
    assert case.example in message, f"the message shows an example: {message}"
    assert "not published" in message
    assert project.tables.version("checked") == version, "the failed version was published"
    assert project.tables.content_hash("checked") == content
    assert rows(project, "checked") == before
    assert project.metadata.table_versions("checked") == records


def test_examples_are_capped(project: Project) -> None:
    sql_transform(project.root, "checked", "select user_id from page_view", inputs=LOG,
                  expect="accepted_values(user_id, ann)")
    ingest_ok(project, [event(i, f"user{i}", 0) for i in range(10)])
    with pytest.raises(ExpectationFailed, match=r"failed on 10 row\(s\)") as caught:
        project.transform()
    assert 1 <= len(re.findall(r"'user_id': 'user\d'", str(caught.value))) <= 5


def test_the_error_names_the_expectation_that_failed(project: Project) -> None:
    sql_transform(project.root, "checked", "select user_id, url from page_view", inputs=LOG,
                  expect=["not_null(user_id)", "accepted_values(url, /a)", "unique(user_id)"])
    ingest_ok(project, [event(1, "ann", 0, url="/a"), event(2, "ann", 0, url="/a")])
    with pytest.raises(ExpectationFailed) as caught:
        project.transform()
    assert "unique(user_id)" in str(caught.value)
    assert "not_null" not in str(caught.value) and "accepted_values" not in str(caught.value)


def test_a_first_build_that_fails_publishes_nothing(project: Project) -> None:
    sql_transform(project.root, "checked", "select user_id from page_view", inputs=LOG,
                  expect="accepted_values(user_id, ann)")
    sql_transform(project.root, "downstream", "select * from checked", inputs="checked")
    ingest_ok(project, [event(1, "bob", 0)])
    with pytest.raises(ExpectationFailed, match="accepted_values"):
        project.transform()
    for name in ("checked", "downstream"):
        with pytest.raises(InputError, match="not been built"):
            project.tables.read(name)
        assert project.metadata.table_versions(name) == []


def test_a_failed_incremental_run_does_not_move_the_offsets(project: Project) -> None:
    sql_transform(project.root, "referred", "select event_id, referrer from pv",
                  inputs=f"pv={LOG}", materialized="incremental", expect="not_null(referrer)")
    ingest_ok(project, [event(1, "ann", 0, referrer="r")])
    project.transform()
    recorded = inputs_of(project, "referred")
    ingest_ok(project, [event(2, "bob", 0)])
    for _ in range(2):  # not skipped the second time: the offsets did not move
        with pytest.raises(ExpectationFailed, match=r"not_null\(referrer\) failed on 1 row"):
            project.transform()
    assert inputs_of(project, "referred") == recorded
    assert rows(project, "referred") == [{"event_id": "e1", "referrer": "r"}]


def test_a_sql_expectation_that_cannot_run_fails_the_gate(project: Project) -> None:
    sql_transform(project.root, "checked", "select user_id from page_view", inputs=LOG,
                  expect="sql(select no_such_column from this)")
    ingest_ok(project, [event(1, "ann", 0)])
    with pytest.raises(ExpectationFailed, match="could not run"):
        project.transform()
    with pytest.raises(InputError):
        project.tables.read("checked")


# row_count_change ------------------------------------------------------------------------
def test_row_count_change_compares_with_the_previous_version(project: Project) -> None:
    sql_transform(project.root, "all_views", "select event_id from page_view", inputs=LOG,
                  expect="row_count_change(0.5, 2)")
    n = 0

    def add(count: int) -> None:
        nonlocal n
        ingest_ok(project, [event(n + i, "ann", 0) for i in range(count)])
        n += count

    add(4)
    project.transform()  # no previous version: nothing to compare with
    add(3)
    project.transform()  # 7 after 4: x1.75
    add(5)
    project.transform()  # 12 after 7: x1.71 (12 after the first 4 would be x3)
    assert project.tables.read("all_views").num_rows == 12
    version = project.tables.version("all_views")

    add(13)
    with pytest.raises(ExpectationFailed) as caught:
        project.transform()  # 25 after 12: x2.08
    message = str(caught.value)
    assert "row_count_change(0.5, 2)" in message
    assert "25 rows after 12" in message, message
    assert project.tables.version("all_views") == version
    assert project.tables.read("all_views").num_rows == 12


def test_row_count_change_refuses_a_shrinking_table(project: Project) -> None:
    sql_transform(project.root, "some_views", "select event_id from page_view", inputs=LOG,
                  expect="row_count_change(0.5, 2)")
    ingest_ok(project, [event(i, "ann" if i < 2 else "bob", 0) for i in range(10)])
    project.transform()
    sql_transform(project.root, "some_views",
                  "select event_id from page_view where user_id = 'ann'", inputs=LOG,
                  expect="row_count_change(0.5, 2)")
    with pytest.raises(ExpectationFailed, match="2 rows after 10"):
        project.transform()
    assert project.tables.read("some_views").num_rows == 10


def test_row_count_change_on_an_incremental_table_counts_the_whole_table(
        project: Project) -> None:
    sql_transform(project.root, "views", "select event_id from pv", inputs=f"pv={LOG}",
                  materialized="incremental", expect="row_count_change(0.5, 2)")
    ingest_ok(project, [event(i, "ann", 0) for i in range(10)])
    project.transform()
    ingest_ok(project, [event(10, "ann", 0)])
    project.transform()  # 11 rows after 10
    assert project.tables.read("views").num_rows == 11

    # A full rebuild with the same 11 rows is x1.00 of the previous version.
    runs = project.transform(full_refresh=True)
    assert [r.mode for r in runs] == ["full"], (
        "BUG: a full refresh after an incremental version compared its row count with the "
        "number of rows that incremental run appended (TableVersionRecord.rows_out), not "
        "with the previous version's row count")


def test_row_count_change_applies_to_incremental_runs(project: Project) -> None:
    sql_transform(project.root, "views", "select event_id from pv", inputs=f"pv={LOG}",
                  materialized="incremental", expect="row_count_change(0.5, 2)")
    ingest_ok(project, [event(i, "ann", 0) for i in range(5)])
    project.transform()
    version = project.tables.version("views")
    ingest_ok(project, [event(i, "ann", 0) for i in range(5, 20)])  # 20 rows after 5: x4
    with pytest.raises(ExpectationFailed, match="20 rows after 5"):
        project.transform()
        pytest.fail("BUG: an incremental run grew the table x4 past row_count_change(0.5, 2); "
                    "runner._run_one passes previous_rows=None to the gate when incremental")
    assert project.tables.version("views") == version


# Expectations on incremental tables judge the table, not the batch -----------------------
def test_unique_on_an_incremental_table_sees_rows_from_earlier_batches(
        project: Project) -> None:
    sql_transform(project.root, "first_visits", "select user_id from pv", inputs=f"pv={LOG}",
                  materialized="incremental", expect="unique(user_id)")
    ingest_ok(project, [event(1, "ann", 0), event(2, "bob", 0)])
    project.transform()
    version = project.tables.version("first_visits")
    ingest_ok(project, [event(3, "ann", 0)])
    with pytest.raises(ExpectationFailed, match=r"unique\(user_id\) failed on 1 row"):
        project.transform()
        pytest.fail("BUG: unique(user_id) on an incremental table was checked on the new "
                    "batch only; the published table now holds 'ann' twice: "
                    f"{rows(project, 'first_visits')}")
    assert project.tables.version("first_visits") == version


def test_a_keyed_incremental_table_without_latest_by_refuses_a_known_key(
        project: Project) -> None:
    sql_transform(project.root, "by_user", "select user_id, url from pv", inputs=f"pv={LOG}",
                  materialized="incremental", unique_key="user_id")
    ingest_ok(project, [event(1, "ann", 0, url="/a"), event(2, "bob", 0, url="/b")])
    project.transform()
    version = project.tables.version("by_user")
    ingest_ok(project, [event(3, "ann", 5, url="/a2")])
    with pytest.raises(ExpectationFailed, match=r"unique\(user_id\)") as caught:
        project.transform()
    assert "ann" in str(caught.value)
    assert project.tables.version("by_user") == version
    assert {r["user_id"]: r["url"] for r in rows(project, "by_user")} == {"ann": "/a",
                                                                          "bob": "/b"}


def test_a_keyed_table_without_latest_by_refuses_repeated_keys_in_a_full_build(
        project: Project) -> None:
    sql_transform(project.root, "by_user", "select user_id, url from page_view", inputs=LOG,
                  unique_key="user_id")
    ingest_ok(project, [event(1, "ann", 0), event(2, "ann", 1)])
    with pytest.raises(ExpectationFailed, match=r"unique\(user_id\) failed on 1 row"):
        project.transform()
