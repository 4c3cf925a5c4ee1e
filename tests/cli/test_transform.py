from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from flywheel.cli.progress import live_lines
from flywheel.cli.transform import _done_text
from flywheel.project import Project
from flywheel.transforms.runner import TransformRun

from .conftest import Invoke, Terminal, assert_one_line_error, json_lines, page_view

VIEWS = """-- inputs: com.example/page_view
-- materialized: incremental
select event_id, user_id, url, event_time from page_view
"""
PER_USER = """-- inputs: views
select user_id, count(*) as views from views group by user_id
"""
URLS = """-- inputs: com.example/page_view
select url, count(*) as hits from page_view group by url
"""
_SUMMARY_ROW = re.compile(
    r"^\s*([a-z_][a-z0-9_]*)\s+(full|incremental|skipped: up to date|failed)"
    r"\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", re.MULTILINE)


def _write(project_dir: Path, **transforms: str) -> None:
    folder = project_dir / "transforms"
    folder.mkdir(exist_ok=True)
    for name, text in transforms.items():
        (folder / f"{name}.sql").write_text(text)


def _ingest(cli: Invoke, *users: str, url: str = "https://example.com/") -> None:
    result = cli("ingest", "-", input="\n".join(page_view(u, url=url) for u in users) + "\n")
    assert result.exit_code == 0, result.output


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _summary(result: Result) -> dict[str, tuple[str, str, str, str]]:
    """transform -> (mode, version, rows in, rows out), in the order printed."""
    return {m[0]: (m[1], m[2], m[3], m[4]) for m in _SUMMARY_ROW.findall(result.stdout)}


def _row(result: Result, name: str) -> list[str]:
    """The cells of the table row that starts with `name` (cells are 2+ spaces apart)."""
    for line in result.stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == name:
            return cells
    raise AssertionError(f"no row {name} in:\n{result.stdout}")


def _history(project_dir: Path, table: str) -> list[tuple[int, str]]:
    with Project.open(project_dir) as project:
        return [(r.version, r.mode) for r in project.metadata.table_versions(table)]


@pytest.fixture
def built(cli: Invoke, project_dir: Path) -> Invoke:
    """views (incremental) and per_user over three events, built once: views and per_user
    are at v0, from log offsets 0..1."""
    _write(project_dir, views=VIEWS, per_user=PER_USER)
    _ok(cli("apply"))
    _ingest(cli, "u1", "u1", "u2")
    first = _ok(cli("transform"))
    assert _summary(first) == {"views": ("full", "0", "3", "3"),
                               "per_user": ("full", "0", "3", "2")}
    return cli


# transform ---------------------------------------------------------------------------
def test_transform_skips_what_is_up_to_date_then_reads_only_new_rows(built: Invoke) -> None:
    again = _ok(built("transform"))
    assert _summary(again) == {"views": ("skipped: up to date", "0", "-", "-"),
                               "per_user": ("skipped: up to date", "0", "-", "-")}
    _ingest(built, "u3", "u1")
    third = _ok(built("transform"))
    assert third.stderr == ""  # no live lines when stderr is not a terminal
    assert _summary(third) == {"views": ("incremental", "1", "2", "2"),
                               "per_user": ("full", "1", "5", "3")}
    counted = {r["user_id"]: r["views"] for r in
               json_lines(_ok(built("tables", "show", "per_user", "--json")).stdout)}
    assert counted == {"u1": 3, "u2": 1, "u3": 1}


def test_transform_by_name_runs_it_and_its_upstream_only(built: Invoke,
                                                         project_dir: Path) -> None:
    _write(project_dir, urls=URLS)
    _ingest(built, "u3")
    named = _ok(built("transform", "per_user"))
    assert list(_summary(named)) == ["views", "per_user"]
    assert _summary(named)["views"][0] == "incremental"
    assert _history(project_dir, "urls") == []
    assert _row(_ok(built("tables", "list")), "urls")[3:5] == ["-", "-"]
    _ok(built("transform", "urls"))
    assert _history(project_dir, "urls") == [(0, "full")]


def test_full_refresh_and_replay_rebuild_from_offset_zero(built: Invoke,
                                                          project_dir: Path) -> None:
    _ingest(built, "u3", "u4")
    _ok(built("transform"))
    incremental_hash = _ok(built("tables", "hash", "views")).stdout.strip()

    refreshed = _ok(built("transform", "views", "--full-refresh"))
    assert _summary(refreshed) == {"views": ("full", "2", "5", "5")}
    replayed = _ok(built("replay"))
    assert _summary(replayed) == {"views": ("full", "3", "5", "5"),
                                  "per_user": ("full", "2", "5", "4")}
    # Same log, same code: the incremental build and the replay hold the same rows.
    assert _ok(built("tables", "hash", "views")).stdout.strip() == incremental_hash
    assert [mode for _, mode in _history(project_dir, "views")] == [
        "full", "incremental", "full", "full"]


def test_unknown_transform_is_one_line(built: Invoke, project_dir: Path) -> None:
    line = assert_one_line_error(built("transform", "nope"))
    assert "no transform named 'nope'" in line
    assert _history(project_dir, "views") == [(0, "full")]


def test_without_transforms_it_says_how_to_add_one(cli: Invoke) -> None:
    result = _ok(cli("transform"))
    assert result.stdout == "" and "no transforms under transforms/" in result.stderr
    assert "no transforms" in _ok(cli("tables", "list")).stderr


# Failures ------------------------------------------------------------------------------
def test_a_failed_expectation_publishes_nothing(built: Invoke, project_dir: Path) -> None:
    before = _ok(built("tables", "hash", "views")).stdout
    _write(project_dir, views=VIEWS.replace(
        "-- materialized", "-- expect: accepted_values(url, /nope)\n-- materialized"))
    line = assert_one_line_error(built("transform"))
    assert "views" in line and "accepted_values(url, /nope)" in line
    assert "transforms" not in built("transform").stdout  # nothing finished: no summary
    assert _history(project_dir, "views") == [(0, "full")]
    assert _history(project_dir, "per_user") == [(0, "full")]
    with Project.open(project_dir) as project:
        assert project.tables.version("views") == 0
    assert _ok(built("tables", "hash", "views")).stdout == before


def test_a_downstream_failure_still_shows_what_finished(built: Invoke,
                                                        project_dir: Path) -> None:
    _write(project_dir, per_user=PER_USER.replace("select", "-- expect: range(views, , 1)\n"
                                                  "select", 1))
    _ingest(built, "u3")
    result = built("transform")
    line = assert_one_line_error(result)
    assert "per_user" in line and "range(views, , 1)" in line
    assert _summary(result) == {"views": ("incremental", "1", "1", "1"),
                                "per_user": ("failed", "-", "-", "-")}
    assert _history(project_dir, "views") == [(0, "full"), (1, "incremental")]
    assert _history(project_dir, "per_user") == [(0, "full")]


def test_a_sql_error_is_one_line(built: Invoke, project_dir: Path) -> None:
    _write(project_dir, per_user="-- inputs: views\nselect no_such_column from views\n")
    line = assert_one_line_error(built("transform", "per_user"))
    assert "per_user" in line and "SQL failed" in line and "no_such_column" in line


def test_a_cycle_fails_apply_and_transform_in_one_line(cli: Invoke, project_dir: Path) -> None:
    _write(project_dir, first="-- inputs: second\nselect * from second\n",
           second="-- inputs: first\nselect * from first\n")
    assert "cycle" in assert_one_line_error(cli("apply"))
    line = assert_one_line_error(cli("transform"))
    assert "cycle" in line and "first" in line and "second" in line


# lineage -------------------------------------------------------------------------------
def test_lineage_goes_down_to_log_offsets(built: Invoke) -> None:
    _ingest(built, "u3")
    _ok(built("transform"))
    lines = _ok(built("lineage", "per_user")).stdout.splitlines()
    assert lines[0].startswith("table per_user v1 (full, code ")
    views = next(i for i, line in enumerate(lines) if "table views v1 (incremental" in line)
    log = next(i for i, line in enumerate(lines)
               if "log com.example/page_view (offsets 2..2)" in line)
    assert 0 < views < log
    assert _indent(lines[0]) < _indent(lines[views]) < _indent(lines[log])

    old = _ok(built("lineage", "views", "--version", "0")).stdout
    assert "table views v0 (full" in old and "(offsets 0..1)" in old


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" │├└─"))


def test_lineage_of_what_was_never_built_is_one_line(built: Invoke) -> None:
    assert "no recorded versions" in assert_one_line_error(built("lineage", "nope"))
    assert "no recorded version 7" in assert_one_line_error(
        built("lineage", "views", "--version", "7"))


# tables --------------------------------------------------------------------------------
def test_tables_list_shows_total_rows_and_run_order(built: Invoke, project_dir: Path) -> None:
    _write(project_dir, urls=URLS)
    _ingest(built, "u3", "u4")
    _ok(built("transform", "per_user"))
    listed = _ok(built("tables", "list"))
    names = [line.split()[0] for line in listed.stdout.splitlines()
             if line.strip().split(" ")[0] in ("views", "per_user", "urls")]
    assert names.index("views") < names.index("per_user")
    views = _row(listed, "views")
    # The newest version only appended 2 rows; the table holds all 5.
    assert views[:5] == ["views", "incremental", "com.example/page_view", "1", "5"]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", views[5])
    assert _row(listed, "per_user")[:5] == ["per_user", "table", "views", "1", "4"]
    assert _row(listed, "urls")[3:] == ["-", "-", "-"]


def test_tables_show_rows_of_a_version(built: Invoke) -> None:
    _ingest(built, "u3", "u4")
    _ok(built("transform"))
    latest = json_lines(_ok(built("tables", "show", "views", "--json")).stdout)
    assert sorted(r["user_id"] for r in latest) == ["u1", "u1", "u2", "u3", "u4"]
    assert set(latest[0]) == {"event_id", "user_id", "url", "event_time"}
    first = json_lines(_ok(built("tables", "show", "views", "--version", "0", "--json")).stdout)
    assert sorted(r["user_id"] for r in first) == ["u1", "u1", "u2"]

    table = _ok(built("tables", "show", "views", "-n", "2"))
    assert "views v1" in table.stdout and "event_time" in table.stdout
    assert table.stdout.count("https://example.com/") == 2


def test_tables_show_errors_are_one_line(built: Invoke) -> None:
    assert "versions 0..0; 5 is not one" in assert_one_line_error(
        built("tables", "show", "views", "--version", "5"))
    assert "no derived table named 'nope'" in assert_one_line_error(
        built("tables", "show", "nope"))
    assert "log tail" in assert_one_line_error(
        built("tables", "show", "com.example/page_view"))


def test_tables_versions_shows_how_each_was_built(built: Invoke, project_dir: Path) -> None:
    _ingest(built, "u3")
    _ok(built("transform"))
    result = _ok(built("tables", "versions", "views"))
    with Project.open(project_dir) as project:
        code = project.metadata.table_versions("views")[0].code_hash[:12]
    assert _row(result, "0")[1:] == ["full", "3", "3", code, "com.example/page_view 0..1",
                                     _row(result, "0")[-1]]
    assert _row(result, "1")[1:6] == ["incremental", "1", "1", code,
                                      "com.example/page_view 2..2"]
    downstream = _ok(built("tables", "versions", "per_user"))
    assert _row(downstream, "1")[5] == "views v1"
    assert "no recorded versions" in assert_one_line_error(built("tables", "versions", "nope"))


def test_tables_hash_is_the_content_hash(built: Invoke, project_dir: Path) -> None:
    _ingest(built, "u3")
    _ok(built("transform"))
    latest = _ok(built("tables", "hash", "views")).stdout
    assert re.fullmatch(r"[0-9a-f]{64}\n", latest)
    with Project.open(project_dir) as project:
        assert latest.strip() == project.tables.content_hash("views")
        assert project.tables.content_hash("views", 0) == _ok(
            built("tables", "hash", "views", "--version", "0")).stdout.strip()
    assert _ok(built("tables", "hash", "views", "--version", "0")).stdout != latest
    assert "9 is not one" in assert_one_line_error(
        built("tables", "hash", "views", "--version", "9"))


# Help and the live display -------------------------------------------------------------
def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    commands = [["transform"], ["replay"], ["lineage"], ["tables", "list"],
                ["tables", "show"], ["tables", "versions"], ["tables", "hash"]]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.stdout and f"flywheel {' '.join(command)}" in result.stdout
    top = runner.invoke(app, ["--help"]).stdout
    assert all(re.search(rf"│ {name}\s", top) for name in
               ("transform", "replay", "lineage", "tables"))


def _show_lines(monkeypatch: pytest.MonkeyPatch) -> str:
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    with live_lines() as lines:
        lines.start("views")
        lines.finish("views", _done_text(TransformRun("views", "incremental", 3, 7, 5, 0.2)))
        lines.start("per_user")
        lines.finish("per_user", _done_text(
            TransformRun("per_user", "skipped", 2, 0, 0, 0.0, "up to date")))
    return stderr.getvalue()


def test_live_lines_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLYWHEEL_NO_PROGRESS", raising=False)
    shown = _show_lines(monkeypatch)
    assert "views: incremental, 7 in, 5 out" in shown
    assert "per_user: skipped: up to date" in shown


def test_no_live_lines_when_asked_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_NO_PROGRESS", "1")
    assert _show_lines(monkeypatch) == ""
