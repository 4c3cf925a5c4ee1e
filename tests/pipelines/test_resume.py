"""A failed run resumes from its failed step: the steps that succeeded are reused as they
are, params may change for the failed step and those after it, not before."""

from __future__ import annotations

import pytest

from flywheel.pipelines import PipelineError, StepFailedError
from flywheel.pipelines.state import load_state
from flywheel.project import Project
from tests.pipelines.support import calls, children, write_project

STEPS = '''
from pathlib import Path

from flywheel.pipelines import Pipeline

HERE = Path(__file__).parent


def called(name):
    with (HERE / "calls.txt").open("a") as handle:
        handle.write(name + "\\n")


def prepare(rows: int = 4) -> list:
    called("prepare")
    return list(range(rows))


def train(prepare: list, rate: float = 0.5) -> float:
    called("train")
    if (HERE / "broken").exists():
        raise ValueError("the learning rate diverged\\nat epoch 3")
    return sum(prepare) * rate


def report(train: float, digits: int = 2) -> str:
    called("report")
    return f"{train:.{digits}f}"


pipeline = Pipeline("fit", steps=[prepare, train, report])
'''


@pytest.fixture
def svc(project: Project) -> Project:
    write_project(project.root, STEPS)
    return project


def broken(svc: Project, on: bool = True) -> None:
    marker = svc.root / "pipelines" / "broken"
    if on:
        marker.touch()
    else:
        marker.unlink()


def fail_once(svc: Project, **params: object) -> StepFailedError:
    broken(svc)
    with pytest.raises(StepFailedError) as info:
        svc.run("numbers.yaml", params=params or None)
    broken(svc, on=False)
    assert calls(svc.root) == ["prepare", "train"]
    return info.value


def test_a_failed_step_is_one_line_with_the_run_to_resume(svc: Project) -> None:
    error = fail_once(svc)
    assert str(error) == (f"step train failed: ValueError: the learning rate diverged at "
                          f"epoch 3 — fix it, then `flywheel run --resume {error.run_id}`")
    assert error.step == "train"
    state = load_state(svc.artifacts, error.run_id)
    assert state.status == "failed"
    assert {n: s.status for n, s in state.steps.items()} == {
        "prepare": "ran", "train": "failed", "report": "pending"}
    assert "Traceback" in state.steps["train"].details
    assert "raise ValueError" in state.steps["train"].details


def test_resume_reuses_what_succeeded_and_runs_the_rest(svc: Project) -> None:
    error = fail_once(svc)
    resumed = svc.run(resume=error.run_id)
    assert calls(svc.root) == ["train", "report"]
    assert {s.name: s.status for s in resumed.steps} == {
        "prepare": "reused", "train": "ran", "report": "ran"}
    assert resumed.output("report") == "3.00"
    assert resumed.id != error.run_id
    assert resumed.state.resumed_from == error.run_id
    parent = svc.runs.get(resumed.id)
    assert parent.tags["flywheel.resumed_from"] == error.run_id
    assert parent.status == "finished"
    assert svc.runs.get(error.run_id).status == "failed"
    assert children(svc, parent.id)["prepare"].tags["flywheel.cache"] == "reused"
    assert svc.runs.load_artifact(parent.id, "report") == "3.00"
    with pytest.raises(PipelineError, match="finished; there is nothing to resume"):
        svc.run(resume=resumed.id)


def test_resume_takes_new_params_for_the_failed_step_and_after(svc: Project) -> None:
    error = fail_once(svc)
    resumed = svc.run(resume=error.run_id, params={"rate": 2.0, "digits": 0})
    assert calls(svc.root) == ["train", "report"]
    assert resumed.output("report") == "12"
    assert resumed.params == {"rate": 2.0, "digits": 0}


def test_resume_refuses_a_new_param_for_a_step_it_reuses(svc: Project) -> None:
    error = fail_once(svc)
    with pytest.raises(PipelineError, match=r"param\(s\) rows of step prepare changed, but "
                       "prepare succeeded in run"):
        svc.run(resume=error.run_id, params={"rows": 10})
    assert calls(svc.root) == []


def test_resume_reuses_even_if_a_succeeded_steps_code_changed(svc: Project) -> None:
    error = fail_once(svc)
    path = svc.root / "pipelines" / "numbers.py"
    path.write_text(path.read_text().replace("list(range(rows))", "list(range(rows * 100))"))
    resumed = svc.run(resume=error.run_id)
    assert calls(svc.root) == ["train", "report"]
    assert resumed.output("train") == 3.0  # from the output prepare made in that run


def test_a_run_that_fails_again_can_be_resumed_again(svc: Project) -> None:
    error = fail_once(svc)
    broken(svc)
    with pytest.raises(StepFailedError) as again:
        svc.run(resume=error.run_id)
    assert calls(svc.root) == ["train"]
    broken(svc, on=False)
    final = svc.run(resume=again.value.run_id)
    assert calls(svc.root) == ["train", "report"]
    assert final.state.resumed_from == again.value.run_id


def test_an_interrupted_run_is_resumable(svc: Project) -> None:
    path = svc.root / "pipelines" / "numbers.py"
    original = path.read_text()
    path.write_text(original.replace('    called("train")\n',
                                     '    called("train")\n    raise KeyboardInterrupt\n'))
    with pytest.raises(KeyboardInterrupt):
        svc.run("numbers.yaml")
    assert calls(svc.root) == ["prepare", "train"]
    interrupted = svc.runs.search(name="fit")[0]
    assert interrupted.status == "failed"
    assert children(svc, interrupted.id)["train"].status == "failed"
    state = load_state(svc.artifacts, interrupted.id)
    assert state.status == "failed"
    assert state.steps["train"].error == "interrupted (KeyboardInterrupt)"
    path.write_text(original)
    resumed = svc.run(resume=state.run_id)
    assert calls(svc.root) == ["train", "report"]
    assert resumed.status == "finished"


def test_resume_errors_are_one_line(svc: Project) -> None:
    with pytest.raises(PipelineError, match="no pipeline run 'nope'"):
        svc.run(resume="nope")
    with pytest.raises(PipelineError, match="not both"):
        svc.run("numbers.yaml", resume="x")
    with pytest.raises(PipelineError, match="not both"):
        svc.run()
