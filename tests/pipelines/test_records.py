"""What a pipeline run records in tracking: the run, one child run per step, each step's
output as a run artifact; and the state saved to resume it."""

from __future__ import annotations

import json

from flywheel.pipelines.state import load_state
from flywheel.project import Project
from tests.pipelines.support import children, write_project


def test_a_run_and_a_child_run_per_step(project: Project) -> None:
    write_project(project.root, spec="pipeline: pipelines/numbers.py:pipeline\n"
                  "name: nightly\nparams: {factor: 3}\ntags: {team: growth}\n"
                  "resources: {squared: {cpus: 1, memory: 1MB}}\n")
    result = project.run("numbers.yaml")
    parent = project.runs.get(result.id)
    assert (parent.name, parent.parent_id, parent.status) == ("nightly", None, "finished")
    assert parent.params == {"factor": "3"}
    assert parent.tags["team"] == "growth"
    assert parent.tags["flywheel.pipeline"] == "numbers"
    assert parent.tags["flywheel.status"] == "finished"
    assert parent.metrics == {"steps_ran": 4.0, "total": 32.0}  # a number output is a metric
    steps = children(project, parent.id)
    assert sorted(steps) == ["doubled", "raw", "squared", "total"]
    doubled = steps["doubled"]
    assert doubled.name == "nightly.doubled" and doubled.status == "finished"
    assert doubled.params == {"factor": "3"}
    assert doubled.tags["flywheel.cache"] == "miss"
    stored = result.step("doubled").output
    assert stored is not None
    assert doubled.tags["flywheel.output"] == stored.digest
    assert doubled.tags["flywheel.output_kind"] == "pickle"
    assert doubled.metrics["seconds"] >= 0
    assert json.loads(steps["squared"].tags["flywheel.resources"]) == {
        "cpus": 1.0, "memory": 1_000_000, "gpus": 0}
    assert result.step("doubled").run_id == doubled.id
    # Outputs are run artifacts: by step name on the run, as `output` on the step's run.
    assert parent.artifacts["total"].sha256 == result.step("total").output.digest  # type: ignore[union-attr]
    assert project.runs.load_artifact(parent.id, "total") == 3 * 6 + 14
    assert project.runs.load_artifact(doubled.id, "output") == [0, 3, 6, 9]

    again = project.run("numbers.yaml")
    assert {r.tags["flywheel.cache"] for r in children(project, again.id).values()} == {"hit"}
    # A number from the cache is a metric of this run too.
    assert project.runs.get(again.id).metrics == {"steps_cached": 4.0, "total": 32.0}
    assert project.runs.load_artifact(again.id, "total") == 3 * 6 + 14


def test_a_failed_run_records_the_failed_step(project: Project) -> None:
    path = project.root / "pipelines" / "numbers.py"
    path.write_text(path.read_text().replace('    called("squared")\n',
                                             '    called("squared")\n    1 / 0\n'))
    import pytest

    from flywheel.pipelines import StepFailedError

    with pytest.raises(StepFailedError) as info:
        project.run("numbers.yaml")
    parent = project.runs.get(info.value.run_id)
    assert parent.status == "failed"
    assert parent.tags["flywheel.status"] == "failed"
    squared = children(project, parent.id)["squared"]
    assert squared.status == "failed"
    assert squared.tags["flywheel.error"] == "ZeroDivisionError: division by zero"
    assert "total" not in children(project, parent.id)  # never started
    assert sorted(parent.artifacts) == ["doubled", "raw"]


def test_the_saved_state_has_spec_params_steps_and_outputs(project: Project) -> None:
    result = project.run("numbers.yaml", params={"rows": 2})
    state = load_state(project.artifacts, result.id)
    assert state.spec["pipeline"] == "pipelines/numbers.py:pipeline"
    assert state.params == {"rows": 2}
    assert state.status == "finished"
    assert state.spec_path == str(project.root / "numbers.yaml")
    assert [s.status for s in state.steps.values()] == ["ran"] * 4
    assert state.steps["raw"].params == {"rows": 2}
    assert state.steps["total"].output == result.step("total").output

