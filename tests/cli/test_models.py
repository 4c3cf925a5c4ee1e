"""`flywheel models list|show|register|alias`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from flywheel.project import Project
from tests.cli.conftest import Invoke, assert_one_line_error
from tests.registry.support import ingest, write_training_project


class Constant:
    def predict(self, data: Any) -> list[int]:
        return [1] * len(data)


@pytest.fixture
def registered(project_dir: Path) -> str:
    with Project.open(project_dir) as project:
        with project.start_run("train") as run:
            run.log_metrics({"auc": 0.875})
            run.log_artifact("model", Constant())
        project.registry.register("purchase", run_id=run.id, artifact="model",
                                  output_schema={"purchase": "int"})
        project.registry.register("purchase", model=Constant(), metrics={"auc": 0.9})
    return run.id


def test_list_show_and_alias(cli: Invoke, registered: str) -> None:
    listed = cli("models", "list")
    assert listed.exit_code == 0, listed.output
    assert "purchase" in listed.stdout and "python" in listed.stdout

    moved = cli("models", "alias", "purchase", "champion", "1", "--reason", "first one")
    assert moved.exit_code == 0, moved.output
    assert "purchase@champion → version 1" in moved.stdout
    assert "(was 1)" in cli("models", "alias", "purchase", "champion", "2", "-r", "auc").stdout
    assert "nothing changed" in cli("models", "alias", "purchase", "champion", "2").stdout
    assert "champion→2" in cli("models", "list").stdout

    shown = cli("models", "show", "purchase")
    assert shown.exit_code == 0, shown.output
    for expected in ("alias history", "first one", "auc=0.875", "purchase/2", "champion"):
        assert expected in shown.stdout
    one = cli("models", "show", "purchase/1").stdout
    assert registered in one and "purchase=int" in one and "alias history" not in one
    assert "purchase/2" in cli("models", "show", "purchase@champion").stdout

    removed = cli("models", "alias", "purchase", "champion", "--remove", "-r", "rollback")
    assert "removed (was version 2)" in removed.stdout
    assert "rollback" in cli("models", "show", "purchase").stdout


@pytest.mark.parametrize(("args", "message"), [
    (["models", "show", "purchase@"], "cannot read the model URI"),
    (["models", "show", "nothing"], "no model 'nothing'"),
    (["models", "show", "purchase@gone"], "no alias 'gone'"),
    (["models", "alias", "purchase", "champion", "7"], "no version 7"),
    (["models", "alias", "purchase", "champion"], "give a VERSION"),
    (["models", "alias", "purchase", "champion", "1", "--remove"], "give a VERSION"),
    (["models", "alias", "purchase", "champion", "--remove"], "no alias 'champion'"),
    (["models", "alias", "purchase", "9x", "1"], "is not a name"),
    (["models", "alias", "purchase", "champion", "one"], "VERSION"),
])
def test_bad_input_is_one_line(cli: Invoke, registered: str, args: list[str],
                               message: str) -> None:
    assert message in assert_one_line_error(cli(*args))


def test_no_models_yet(cli: Invoke) -> None:
    result = cli("models", "list")
    assert result.exit_code == 0 and "no models yet" in result.stderr


@pytest.fixture
def trained(runner: CliRunner, project_dir: Path) -> tuple[Invoke, str]:
    """A project whose training pipeline has run once: the CLI and the run's id."""
    write_training_project(project_dir)

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--project", str(project_dir), *args])

    assert invoke("apply").exit_code == 0
    with Project.open(project_dir) as project:
        ingest(project, range(6))
        run_id = project.run("pipelines/train.yaml").id
    return invoke, run_id


def test_register_from_a_pipeline_run_by_prefix(trained: tuple[Invoke, str]) -> None:
    cli, run_id = trained
    result = cli("models", "register", "purchase", "--run", run_id[:8], "--alias", "challenger")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first == (f"registered purchase/1 from run train {run_id[:8]} (artifact model, "
                     "sklearn); purchase@challenger → version 1")
    shown = cli("models", "show", "purchase/1").stdout
    for expected in (f"train {run_id} (artifact model)", "feature service   score",
                     "entity rows       query over user_daily v0: select user_id, day_end",
                     "window            [2026-01-01, 2026-03-01)",
                     "training set      user_daily v0, user_visits v0", "log offsets"):
        assert expected in shown, shown
    assert "steps_ran" not in shown and "accuracy=" in shown and "rows=6" in shown


def test_register_json_and_another_feature_service(trained: tuple[Invoke, str]) -> None:
    cli, run_id = trained
    result = cli("models", "register", "purchase", "--run", run_id, "--feature-service",
                 "wide", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["uri"] == "purchase/1" and document["run_id"] == run_id
    assert document["signature"]["feature_service"] == "wide"
    assert document["signature"]["trained_on"] == "score"
    assert document["lineage"]["entities"]["tables"] == {"user_daily": 0}
    assert set(document["metrics"]) == {"accuracy", "rows"}
    shown = json.loads(cli("models", "show", "purchase", "--json").stdout)
    assert shown == document
    assert "wide (trained on score)" in cli("models", "show", "purchase/1").stdout
    again = cli("models", "register", "purchase", "--run", run_id, "--feature-service", "wide")
    assert "is not the training data's ('score'); both are recorded" in again.stderr


def test_a_run_without_a_training_set_says_it_was_not_recorded(cli: Invoke,
        project_dir: Path) -> None:
    with Project.open(project_dir) as project:
        with project.start_run("fit") as run:
            run.log_artifact("model", Constant())
        project.registry.register("plain", run_id=run.id)
    assert "entity rows       not recorded" in cli("models", "show", "plain/1").stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--run", "0000"], "no run 0000 — see `flywheel runs list`"),
    (["--run", "RUN", "--artifact", "nope"], "has no artifact 'nope' — its models: model"),
    (["--run", "RUN", "--artifact", "accuracy"], "is a float, not a model"),
    (["--run", "RUN", "--feature-service", "nope"], "no feature service 'nope'"),
    (["--run", "RUN", "--feature-service", "pages_only"], "does not serve seconds"),
    (["--run", "RUN", "--alias", "9x"], "alias '9x' is not a name"),
    (["--run", "FAILED"], "failed: ValueError: diverged; a model registers from a finished "
     "run — see `flywheel runs list --status finished`"),
    (["--run", "NOTES"], "has no model: no pickled artifact with a predict method"),
    ([], "Missing option '--run'"),
])
def test_register_bad_input_is_one_line(trained: tuple[Invoke, str], project_dir: Path,
                                        args: list[str], message: str) -> None:
    cli, run_id = trained
    with Project.open(project_dir) as project:
        with pytest.raises(ValueError), project.start_run("broken") as broken:
            raise ValueError("diverged")
        with project.start_run("notes") as notes:
            notes.log_artifact("summary", {"auc": 1})
    named = {"RUN": run_id, "FAILED": broken.id, "NOTES": notes.id}
    line = assert_one_line_error(cli("models", "register", "purchase",
                                     *[named.get(a, a) for a in args]))
    assert message in line
    assert "no models yet" in cli("models", "list").stderr


def test_register_help_teaches_with_an_example(trained: tuple[Invoke, str]) -> None:
    cli, _ = trained
    result = cli("models", "register", "--help")
    assert result.exit_code == 0
    assert "flywheel models register purchase --run 3f2a9c01" in result.stdout
    assert "prefix" in result.stdout
