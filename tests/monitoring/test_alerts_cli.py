"""`flywheel monitor alerts`: the history as a table and as JSON, filtered, and a bad
`--since` as one line with exit code 2."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from flywheel._core.clock import utc_now
from flywheel.cli.main import app
from flywheel.monitoring.alerts import Alerts
from flywheel.monitoring.policy import ActionSpec
from flywheel.project import Project
from tests.monitoring.alerts_support import Clock, receiver, result


def _history(project_dir: Path) -> None:
    with Project.open(project_dir) as project, receiver() as hook:
        hook.statuses = [503]
        ops = ActionSpec(name="ops", kind="webhook", target=hook.url)
        old = Alerts(store=project.metadata, actions={"ops": ops}, clock=Clock())
        old.dispatch("purchase_drift", ["ops"], [result(0), result(1)])  # failed, suppressed
        recent = Alerts(store=project.metadata, actions={"ops": ops}, clock=utc_now)
        recent.dispatch("sessions_quality", ["ops"], [result(0, monitor="sessions")])


def test_the_history_as_a_table_and_as_json(project_dir: Path) -> None:
    _history(project_dir)
    runner = CliRunner()
    shown = runner.invoke(app, ["--project", str(project_dir), "monitor", "alerts"],
                          env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert any("purchase_drift" in line and "failed" in line and "HTTP 503" in line
               for line in lines)
    assert any("suppressed" in line and "cooldown: alert 1" in line for line in lines)
    assert any("sessions_quality" in line and "delivered" in line for line in lines)
    assert any("psi 0.31 vs 0.2" in line for line in lines)

    as_json = runner.invoke(app, ["--project", str(project_dir), "monitor", "alerts",
                                  "--json", "--monitor", "purchase_drift"])
    listed = json.loads(as_json.stdout)
    assert [(a["id"], a["outcome"]) for a in listed] == [(2, "suppressed"), (1, "failed")]
    assert listed[1]["detail"] == "HTTP 503: ok"

    recent = runner.invoke(app, ["--project", str(project_dir), "monitor", "alerts",
                                 "--json", "--since", "1d"])
    assert [a["monitor"] for a in json.loads(recent.stdout)] == ["sessions_quality"]
    day = (utc_now() + dt.timedelta(days=1)).date().isoformat()
    none = runner.invoke(app, ["--project", str(project_dir), "monitor", "alerts",
                               "--since", day])
    assert none.exit_code == 0 and "no alerts since" in none.stderr


def test_a_bad_since_is_one_line(project_dir: Path) -> None:
    result = CliRunner().invoke(app, ["--project", str(project_dir), "monitor", "alerts",
                                      "--since", "last tuesday"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --since 'last tuesday' is neither a time nor a duration — e.g. "
        "2026-03-01T00:00:00Z, 2026-03-01, 1d or 30m"]
