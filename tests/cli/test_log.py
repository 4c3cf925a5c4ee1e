from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from flywheel.project import Project

from .conftest import PAGE_VIEW, Invoke, assert_one_line_error, counts, json_lines, page_view

V110 = PAGE_VIEW.replace("1-0-0", "1-1-0")


def _events(project_dir: Path) -> int:
    with Project.open(project_dir) as project:
        return sum(s.events for s in project.log.stats() if s.table == "com.example/page_view/v1")


def _ingest(cli: Invoke, *lines: str) -> None:
    result = cli("ingest", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output


def test_tail_shows_the_newest_events(cli: Invoke) -> None:
    _ingest(cli, *(page_view(f"u{i}") for i in range(1, 4)))   # offset 1
    _ingest(cli, *(page_view(f"u{i}") for i in range(4, 7)))   # offset 2

    table = cli("log", "tail", "com.example/page_view", "-n", "3")
    assert table.exit_code == 0, table.output
    assert all(f"u{i}" in table.stdout for i in (4, 5, 6))
    assert "u3" not in table.stdout and "u1" not in table.stdout

    rows = json_lines(cli("log", "tail", "com.example/page_view/v1", "-n", "4", "--json").stdout)
    assert [r["user_id"] for r in rows][-3:] == ["u4", "u5", "u6"] and len(rows) == 4
    assert [r["offset"] for r in rows] == [1, 2, 2, 2]

    past = json_lines(cli("log", "tail", PAGE_VIEW, "--as-of", "1", "--json").stdout)
    assert sorted(r["user_id"] for r in past) == ["u1", "u2", "u3"]


def test_tail_of_an_offset_beyond_the_log_is_one_line(cli: Invoke) -> None:
    _ingest(cli, page_view("u1"))
    line = assert_one_line_error(cli("log", "tail", "com.example/page_view", "--as-of", "9"))
    assert "offsets 0..1" in line


def test_tail_of_an_unknown_table_is_one_line(cli: Invoke) -> None:
    assert "no log table" in assert_one_line_error(cli("log", "tail", "com.acme/nothing"))


def test_stats_and_bad_rows_filters(cli: Invoke) -> None:
    _ingest(cli, page_view("u1"), page_view("u2", url=None), "{nope",
            json.dumps({"schema": "iglu:com.acme/ghost/jsonschema/1-0-0", "data": {}}))
    stats = cli("log", "stats")
    assert "unknown_schema 1" in stats.stdout and "not_json 1" in stats.stdout

    only = json_lines(cli("log", "bad-rows", "--reason", "not_json", "--json").stdout)
    assert [r["reason"] for r in only] == ["not_json"] and only[0]["raw"] == "{nope"
    by_schema = json_lines(cli("log", "bad-rows", "--schema", "com.example", "--json").stdout)
    assert [r["reason"] for r in by_schema] == ["schema_violation"]
    assert json_lines(cli("log", "bad-rows", "--limit", "1", "--json").stdout).__len__() == 1
    none = cli("log", "bad-rows", "--reason", "too_large")
    assert none.exit_code == 0 and "no bad rows match" in none.stderr


def test_stats_json_accounts_for_every_receipt_per_table_and_door(cli: Invoke) -> None:
    lines = [json.dumps({"schema": PAGE_VIEW, "event_id": "k1",
                         "data": {"user_id": "u1", "url": "/"}}),
             page_view("u2", url=None), "{nope"]
    for _ in range(2):  # a client retrying the whole file
        _ingest(cli, *lines)
    result = cli("log", "stats", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    doors = {(d["table"], d["door"]): d for d in report["doors"]}
    page = doors[("com.example/page_view/v1", "file")]
    assert (page["received"], page["accepted"], page["rejected"], page["duplicates"]) == (
        4, 1, 2, 1)
    assert doors[("(no known schema)", "file")]["rejected"] == 2
    for door in report["doors"]:
        assert door["received"] == door["accepted"] + door["rejected"] + door["duplicates"]
    [table] = [t for t in report["tables"] if t["table"] == "com.example/page_view/v1"]
    assert table["events"] == 1 and table["bad_rows"] == {"schema_violation": 1}
    shown = cli("log", "bad-rows")
    assert re.search(r"schema_violation\s+1\s+2\s+0", shown.stdout), shown.stdout
    assert "received 2 times" in shown.stdout


def _fix_file(tmp_path: Path) -> Path:
    path = tmp_path / "fixes.py"
    path.write_text(
        "def to_v110(event):\n"
        "    if isinstance(event, dict) and 'plan' in event.get('data', {}):\n"
        f"        return {{**event, 'schema': {V110!r}}}\n"
        "    return None\n")
    return path


def test_recover_after_a_minor_version_recovers_exactly_once(
        cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    _ingest(cli, page_view("u1"),
            json.dumps({"schema": PAGE_VIEW, "event_id": "p1",
                        "data": {"user_id": "u2", "url": "/", "plan": "pro"}}),
            json.dumps({"schema": PAGE_VIEW, "event_id": "p2",
                        "data": {"user_id": "u3", "url": "/", "plan": "free"}}),
            page_view("u4", url=None))
    assert _events(project_dir) == 1
    document = json.loads((project_dir / "schemas/com.example/page_view/jsonschema/1-0-0")
                          .read_text())
    document["self"]["version"] = "1-1-0"
    document["properties"]["plan"] = {"type": "string"}
    (project_dir / "schemas/com.example/page_view/jsonschema/1-1-0").write_text(
        json.dumps(document))
    assert cli("apply").exit_code == 0
    fix = f"{_fix_file(tmp_path)}:to_v110"

    dry = cli("log", "recover", "--fix", fix, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert re.search(r"would recover\s+2", dry.stdout), dry.stdout
    assert _events(project_dir) == 1

    first = cli("log", "recover", "--fix", fix)
    assert first.exit_code == 0, first.output
    assert _table_value(first.stdout, "recovered") == 2
    assert _table_value(first.stdout, "skipped by fix") == 1
    assert _events(project_dir) == 3

    second = cli("log", "recover", "--fix", fix)
    assert _table_value(second.stdout, "recovered") == 0
    assert _events(project_dir) == 3

    tail = json_lines(cli("log", "tail", "com.example/page_view", "--json").stdout)
    recovered = {r["event_id"]: r for r in tail if r["source"] == "recover"}
    assert set(recovered) == {"p1", "p2"} and recovered["p1"]["plan"] == "pro"
    bad = json_lines(cli("log", "bad-rows", "--json").stdout)
    assert sorted(r["recovered"] for r in bad) == [False, True, True]


def test_recover_with_an_importable_module_function(
        cli: Invoke, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "fw_test_repairs", raising=False)
    (project_dir / "fw_test_repairs.py").write_text(
        "def add_url(event):\n"
        "    event['data'].setdefault('url', 'https://example.com/')\n"
        "    return event\n")
    _ingest(cli, page_view("u1", url=None), page_view("u2", url=None), "{nope")
    result = cli("log", "recover", "--fix", "fw_test_repairs:add_url",
                 "--reason", "schema_violation")
    assert result.exit_code == 0, result.output
    assert _table_value(result.stdout, "considered") == 2
    assert _table_value(result.stdout, "recovered") == 2
    assert _events(project_dir) == 2
    monkeypatch.delitem(sys.modules, "fw_test_repairs", raising=False)


def test_recover_without_a_fix_leaves_still_bad_rows(cli: Invoke, project_dir: Path) -> None:
    _ingest(cli, page_view("u1", url=None))
    result = cli("log", "recover")
    assert _table_value(result.stdout, "still bad") == 1
    assert _table_value(result.stdout, "recovered") == 0
    assert "still failing" in result.stdout and _events(project_dir) == 0


@pytest.mark.parametrize(("fix", "message"), [
    ("nowhere.py:fix", "no such file"),
    ("no_such_module_xyz:fix", "cannot import"),
    ("json:no_such_function", "has no function"),
    ("just-a-name", "expected MODULE:FUNCTION"),
])
def test_recover_with_a_bad_fix_is_one_line(cli: Invoke, fix: str, message: str) -> None:
    assert message in assert_one_line_error(cli("log", "recover", "--fix", fix))


def test_compact_keeps_events_and_offsets(cli: Invoke, project_dir: Path) -> None:
    for i in range(4):
        _ingest(cli, page_view(f"u{i}"))
    with Project.open(project_dir) as project:
        before = project.log.stats()[0]
    result = cli("log", "compact", "com.example/page_view")
    assert result.exit_code == 0, result.output
    assert "com.example/page_view/v1" in result.stdout
    with Project.open(project_dir) as project:
        after = project.log.stats()[0]
    assert after.events == before.events == 4
    assert after.files < before.files
    tail = json_lines(cli("log", "tail", "com.example/page_view", "-n", "2", "--json").stdout)
    assert [r["user_id"] for r in tail] == ["u2", "u3"]


def test_counts_helper_reads_the_summary(cli: Invoke) -> None:
    # Guards the other tests: the summary must carry every count they parse.
    result = cli("ingest", "-", input=page_view("u1") + "\n")
    assert set(counts(result)) == {"received", "accepted", "rejected", "duplicates"}


def _table_value(text: str, label: str) -> int:
    for line in text.splitlines():
        cells = line.strip().rsplit(None, 1)
        if len(cells) == 2 and cells[0] == label:
            return int(cells[1].replace(",", ""))
    raise AssertionError(f"no row {label!r} in:\n{text}")
