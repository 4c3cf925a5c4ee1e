"""`flywheel runs list|show|compare`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flywheel.project import Project
from tests.cli.conftest import Invoke, assert_one_line_error


@pytest.fixture
def run_ids(project_dir: Path) -> list[str]:
    made = []
    with Project.open(project_dir) as project:
        for model, auc in (("lgbm", 0.81), ("xgb", 0.93), ("lgbm", 0.77)):
            with project.start_run("train") as run:
                run.log_params({"model": model, "seed": 1})
                run.log_metrics({"auc": auc, "loss": 0.4})
                run.log_inputs({"user_visits": 2})
                run.log_artifact("model", {"weights": [1, 2]})
            made.append(run.id)
    return made


def test_list_orders_and_filters(cli: Invoke, run_ids: list[str]) -> None:
    result = cli("runs", "list", "--order-by", "metrics.auc desc")
    assert result.exit_code == 0, result.output
    shown = re.findall(r"^\s*([0-9a-f]{8})\s", result.stdout, re.MULTILINE)
    assert shown == [run_ids[1][:8], run_ids[0][:8], run_ids[2][:8]]
    assert "0.93" in result.stdout and "model=xgb" in result.stdout

    result = cli("runs", "list", "-w", "params.model = lgbm", "-w", "metrics.auc > 0.8",
                 "--json")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [run_ids[0]]


def test_show(cli: Invoke, run_ids: list[str]) -> None:
    result = cli("runs", "show", run_ids[1][:10])
    assert result.exit_code == 0, result.output
    for expected in (run_ids[1], "finished", "0.93", "xgb", "user_visits", "json", "python"):
        assert expected in result.stdout
    shown = json.loads(cli("runs", "show", run_ids[1], "--json").stdout)
    assert shown["metrics"] == {"auc": 0.93, "loss": 0.4}
    assert shown["artifacts"]["model"]["kind"] == "json"


def test_compare_marks_differences(cli: Invoke, run_ids: list[str]) -> None:
    result = cli("runs", "compare", run_ids[0], run_ids[1])
    assert result.exit_code == 0, result.output
    marks = {label: star for star, label in re.findall(
        r"^\s*(\*?)\s*((?:params|metrics)\.\w+)\s", result.stdout, re.MULTILINE)}
    assert marks == {"params.model": "*", "params.seed": "", "metrics.auc": "*",
                     "metrics.loss": ""}
    only = cli("runs", "compare", run_ids[0], run_ids[1], "--diff").stdout
    assert "params.model" in only and "params.seed" not in only and "loss" not in only


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "show", "ffffffff"], "no run ffffffff"),
    (["runs", "compare", "abc"], "at least two runs"),
    (["runs", "list", "-w", "metrics.auc >> 1"], "is not a number"),
    (["runs", "list", "-w", "auc > 1"], "cannot read the run filter"),
    (["runs", "list", "--order-by", "auc"], "cannot order runs"),
    (["runs", "list", "--status", "done"], "unknown run status"),
    (["runs", "list", "--limit", "0"], "limit"),
])
def test_bad_input_is_one_line(cli: Invoke, run_ids: list[str], args: list[str],
                               message: str) -> None:
    assert message in assert_one_line_error(cli(*args))


def test_no_runs_yet(cli: Invoke) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0 and "no runs yet" in result.stderr


def test_list_hides_step_runs_unless_asked(cli: Invoke, project_dir: Path) -> None:
    from flywheel.project import Project

    with Project.open(project_dir) as project, project.start_run("pipeline") as parent:
        project.start_run("pipeline.step", parent_id=parent.id).finish()
    shown = cli("runs", "list").stdout
    assert "pipeline " in shown and "pipeline.step" not in shown
    assert "pipeline.step" in cli("runs", "list", "--steps").stdout
