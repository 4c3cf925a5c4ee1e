"""`flywheel models list|show|alias`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flywheel.project import Project
from tests.cli.conftest import Invoke, assert_one_line_error


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
