"""`flywheel features list|materialize|get`."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import pytest

from flywheel.project import Project
from tests.cli.conftest import Invoke, Terminal, assert_one_line_error
from tests.helpers import VISIT, write_visits_project

DEFINITIONS = '''
import datetime as dt
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"], description="a shopper")
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"], ttl=dt.timedelta(days=30))
score = FeatureService(name="score", features=["visits:*"])
'''


@pytest.fixture
def project_dir(project_dir: Path) -> Path:
    write_visits_project(project_dir, DEFINITIONS)
    return project_dir


def ingest(project_dir: Path, *visits: tuple[str, int]) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with Project.open(project_dir) as project:
        result = project.ingest([{"schema": VISIT, "event_time": now.isoformat(),
                                  "data": {"user_id": u, "pages": p, "seconds": p * 1.5}}
                                 for u, p in visits])
        assert result.accepted == len(visits)
        project.transform()


def summary(stdout: str) -> dict[str, list[str]]:
    """view -> [mode, rows, source version, seconds] from the summary table."""
    rows = re.findall(r"^\s*(visits)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", stdout, re.MULTILINE)
    return {row[0]: list(row[1:]) for row in rows}


def test_list_shows_entities_views_and_services(cli: Invoke) -> None:
    result = cli("features", "list")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"^\s*user\s+user_id\s+a shopper\s*$", out, re.MULTILINE), out
    assert re.search(r"^\s*visits\s+user_visits\s+user\s+user_id\s+event_time\s+"
                     r"pages, seconds\s+30d\s*$", out, re.MULTILINE), out
    assert re.search(r"^\s*score\s+visits:\*\s+-\s*$", out, re.MULTILINE), out


def test_list_without_definitions_says_so(cli: Invoke, project_dir: Path) -> None:
    (project_dir / "definitions.py").unlink()
    result = cli("features", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no feature definitions" in result.stderr


def test_materialize_full_incremental_then_skipped(cli: Invoke, project_dir: Path) -> None:
    ingest(project_dir, ("a", 1), ("b", 2))
    first = cli("features", "materialize")
    assert first.exit_code == 0, first.output
    mode, rows, version, _ = summary(first.stdout)["visits"]
    assert (mode, rows) == ("full", "2")
    ingest(project_dir, ("a", 7))
    second = cli("features", "materialize", "visits")
    assert second.exit_code == 0, second.output
    mode, rows, newer, _ = summary(second.stdout)["visits"]
    assert (mode, rows) == ("incremental", "1")
    assert int(newer) > int(version)
    third = cli("features", "materialize")
    assert summary(third.stdout)["visits"][:3] == ["skipped", "0", newer]
    forced = cli("features", "materialize", "--full")
    assert summary(forced.stdout)["visits"][:2] == ["full", "2"]


def test_materialize_unknown_view_is_one_line(cli: Invoke) -> None:
    line = assert_one_line_error(cli("features", "materialize", "nope"))
    assert "no feature view named nope" in line


def test_get_table_and_json(cli: Invoke, project_dir: Path) -> None:
    ingest(project_dir, ("a", 4))
    assert cli("features", "materialize").exit_code == 0
    table = cli("features", "get", "-e", "user_id=a", "--entity", "user_id=zz",
                "-f", "visits:pages", "-f", "visits:seconds")
    assert table.exit_code == 0, table.output
    assert re.search(r"^\s*a\s+4\s+6\.0\s+yes\s*$", table.stdout, re.MULTILINE), table.stdout
    assert re.search(r"^\s*zz\s+-\s+-\s+no\s*$", table.stdout, re.MULTILINE), table.stdout
    as_json = cli("features", "get", "-e", "user_id=a", "-e", "user_id=zz",
                  "--service", "score", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {
        "features": {"user_id": ["a", "zz"], "pages": [4, None], "seconds": [6.0, None]},
        "found": {"visits": [True, False]}}


@pytest.mark.parametrize(("args", "message"), [
    (["-e", "user_id=a"], "pass either --feature/-f"),
    (["-e", "user_id=a", "-f", "visits:pages", "--service", "score"], "pass either"),
    (["-e", "user_id", "-f", "visits:pages"], "--entity 'user_id' is not KEY=VALUE"),
    (["-e", "user_id=a", "-e", "user_id=b", "-e", "x=1", "-f", "visits:pages"],
     "same number of --entity values"),
    (["-e", "account=a", "-f", "visits:pages"], "needs entity key(s) user_id"),
    (["-e", "user_id=a", "-f", "visits:nope"], "feature view visits has no feature 'nope'"),
    (["-e", "user_id=a", "-f", "nope:pages"], "'nope:pages' is not a feature reference"),
    (["-e", "user_id=a", "--service", "nope"], "no feature service named 'nope'"),
    (["-f", "visits:pages"], "Missing option '--entity'"),
])
def test_get_errors_are_one_line(cli: Invoke, args: list[str], message: str) -> None:
    line = assert_one_line_error(cli("features", "get", *args))
    assert message in line


def test_help_has_examples(cli: Invoke) -> None:
    for command in ("list", "materialize", "get"):
        result = cli("features", command, "--help")
        assert result.exit_code == 0
        assert "flywheel features " + command in result.stdout


def test_materialise_progress_has_a_bar_and_total_per_view(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel.cli.progress import view_progress

    monkeypatch.delenv("FLYWHEEL_NO_PROGRESS", raising=False)
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    with view_progress("materialising") as update:
        update("visits", 0, 300)
        update("visits", 300, 300)
        update("carts", 5, 10)
    shown = stderr.getvalue()
    assert "materialising visits" in shown and "300/300" in shown
    assert "materialising carts" in shown and "5/10" in shown


def test_rows_progress_learns_its_total_as_it_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel.cli.progress import rows_progress

    monkeypatch.delenv("FLYWHEEL_NO_PROGRESS", raising=False)
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    with rows_progress("scoring scores.parquet") as update:
        update(100, None)
        update(250, 400)
    shown = stderr.getvalue()
    assert "scoring scores.parquet" in shown and "250/400" in shown


def test_apply_reports_the_feature_definitions(cli: Invoke, project_dir: Path) -> None:
    before = cli("apply")
    assert before.exit_code == 0, before.output
    assert re.search(r"feature view\s+visits\s+user_visits not built yet", before.stdout)
    assert re.search(r"feature service\s+score\s+ok", before.stdout)
    assert re.search(r"^\s*user_visits\s*$", before.stdout, re.MULTILINE)  # the transform
    ingest(project_dir, ("u1", 2))
    after = cli("apply")
    assert re.search(r"feature view\s+visits\s+checked against its table", after.stdout)
