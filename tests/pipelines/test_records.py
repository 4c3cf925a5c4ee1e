"""What a pipeline run records in tracking: the run, and one child run per step."""

from __future__ import annotations

import json
from pathlib import Path

from flywheel.pipelines.launch import run_pipeline
from flywheel.pipelines.state import load_state
from tests.pipelines.support import FakeTracking, services, write_project


def test_a_run_and_a_child_run_per_step(tmp_path: Path) -> None:
    spec = write_project(tmp_path, spec="pipeline: pipelines/numbers.py:pipeline\n"
                         "name: nightly\nparams: {factor: 3}\ntags: {team: growth}\n"
                         "resources: {squared: {cpus: 1, memory: 1MB}}\n")
    tracking = FakeTracking()
    result = run_pipeline(services(tmp_path, tracking), spec)
    parent = tracking.runs[0]
    assert (parent.name, parent.parent_id, parent.status) == ("nightly", None, "finished")
    assert parent.params == {"factor": 3}
    assert parent.tags["team"] == "growth"
    assert parent.tags["flywheel.pipeline"] == "numbers"
    assert parent.tags["flywheel.status"] == "finished"
    assert parent.metrics == {"steps_ran": 4.0}
    children = tracking.children(parent.id)
    assert sorted(children) == ["doubled", "raw", "squared", "total"]
    doubled = children["doubled"]
    assert doubled.name == "nightly.doubled" and doubled.status == "finished"
    assert doubled.params == {"factor": 3}
    assert doubled.tags["flywheel.cache"] == "miss"
    assert doubled.tags["flywheel.output"] == result.step("doubled").output.digest  # type: ignore[union-attr]
    assert doubled.tags["flywheel.output_kind"] == "pickle"
    assert doubled.metrics["seconds"] >= 0
    assert json.loads(children["squared"].tags["flywheel.resources"]) == {
        "cpus": 1.0, "memory": 1_000_000, "gpus": 0}
    assert result.step("doubled").run_id == doubled.id

    again = FakeTracking()
    run_pipeline(services(tmp_path, again), spec)
    assert {r.tags["flywheel.cache"] for r in again.runs if r.parent_id} == {"hit"}
    assert again.runs[0].metrics == {"steps_cached": 4.0}


def test_the_saved_state_has_spec_params_steps_and_outputs(tmp_path: Path) -> None:
    spec = write_project(tmp_path)
    tracking = FakeTracking()
    result = run_pipeline(services(tmp_path, tracking), spec, params={"rows": 2})
    state = load_state(services(tmp_path, tracking).artifacts, result.id)
    assert state.spec["pipeline"] == "pipelines/numbers.py:pipeline"
    assert state.params == {"rows": 2}
    assert state.status == "finished"
    assert state.spec_path == str(spec)
    assert [s.status for s in state.steps.values()] == ["ran"] * 4
    assert state.steps["raw"].params == {"rows": 2}
    assert state.steps["total"].output == result.step("total").output
