"""`flywheel monitor run|report`: results as a table and as JSON, the HTML report written,
and bad input as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from flywheel.project import Project
from tests.monitoring.retraining_support import ingest_visits, write_retraining_project

MONITORS = """
monitors:
  visits_quality:
    kind: quality
    target: {table: user_visits}
    window: 1d
    rules:
      - {column: pages, range: [0, 8]}
      - {freshness: 2d}
"""


def _project(project_dir: Path) -> Path:
    write_retraining_project(project_dir)
    (project_dir / "monitors.yaml").write_text(MONITORS)
    with Project.open(project_dir) as project:
        project.apply()
        ingest_visits(project)
    return project_dir


def flywheel(root: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--project", str(root), *args],
                              env={"COLUMNS": "200", "FLYWHEEL_NO_PROGRESS": "1"})


def test_run_then_report(project_dir: Path, tmp_path: Path) -> None:
    root = _project(project_dir)
    ran = flywheel(root, "monitor", "run", "--json")
    assert ran.exit_code == 0, ran.output
    (evaluation,) = json.loads(ran.stdout)
    # 40 days of visits: 39 complete days (the last one ends after the newest visit).
    assert evaluation["monitor"] == "visits_quality" and evaluation["windows"] == 39
    red = [r for r in evaluation["results"] if r["status"] == "red"]
    assert red and {r["subject"] for r in red} == {"pages"}  # pages 9 is out of range
    again = flywheel(root, "monitor", "run")
    assert again.exit_code == 0 and "up to date" in again.stdout

    out = tmp_path / "report.html"
    shown = flywheel(root, "monitor", "report", "--out", str(out))
    assert shown.exit_code == 0, shown.output
    assert "visits_quality" in shown.stdout and "out_of_range_share" in shown.stdout
    assert out.read_text().startswith("<!doctype html>")
    summary = json.loads(flywheel(root, "monitor", "report", "--json").stdout)
    assert summary["monitors"][0]["status"] in ("red", "ok")
    assert {f["subject"] for f in summary["red"]} <= {"pages"}


def test_bad_input_is_one_line(project_dir: Path) -> None:
    root = _project(project_dir)
    for args, words in ((["monitor", "run", "nope"], "no monitor 'nope'"),
                        (["monitor", "run", "--every", "soon"], "not a duration")):
        result = flywheel(root, *args)
        assert result.exit_code == 2, result.output
        assert words in result.output and "Traceback" not in result.output
