"""Runs end to end on a real project: what they record, how they end, what reads it back."""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel._core.errors import FlywheelError, InputError
from flywheel.project import Project
from flywheel.tracking import RunNotFoundError


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.open(project_dir) as opened:
        yield opened


def test_a_run_records_everything_and_finishes(project: Project) -> None:
    with project.start_run("train", tags={"team": "growth"}) as run:
        run.log_params({"lr": 0.1, "model": "lgbm", "layers": [3, 2], "seed": 7})
        for epoch in range(3):
            run.log_metrics({"loss": 1.0 / (epoch + 1), "acc": 0.5 + epoch / 10})
        run.log_metric("auc", 0.9, step=10)
        run.log_inputs({"user_visits": 4})
        digest = run.log_artifact("notes", b"hello")
    info = project.runs.get(run.id)

    assert (info.status, run.status) == ("finished", "finished")
    assert info.params == {"lr": "0.1", "model": "lgbm", "layers": "[3,2]", "seed": "7"}
    assert info.metrics == {"loss": pytest.approx(1 / 3), "acc": pytest.approx(0.7), "auc": 0.9}
    system = {k: v for k, v in info.tags.items() if k.startswith("flywheel.")}
    assert {k: v for k, v in info.tags.items() if k not in system} == {"team": "growth"}
    assert system["flywheel.pid"] == str(os.getpid())  # which process ran it
    assert info.inputs == {"user_visits": 4}
    assert info.artifacts["notes"].sha256 == digest and info.artifacts["notes"].kind == "bytes"
    assert info.seconds is not None and info.seconds >= 0
    assert [p.step for p in project.runs.metric_history(run.id, "loss")] == [0, 1, 2]
    assert info.environment["python"].count(".") == 2
    assert "pyarrow" in info.environment["packages"]


def test_an_exception_fails_the_run_and_keeps_buffered_metrics(project: Project) -> None:
    with pytest.raises(ZeroDivisionError), project.start_run("train") as run:
        run.log_metrics({"loss": 0.5})
        1 / 0  # noqa: B018
    info = project.runs.get(run.id)
    assert info.status == "failed"
    assert info.metrics == {"loss": 0.5}
    assert info.tags["flywheel.error"] == "ZeroDivisionError: division by zero"
    with pytest.raises(FlywheelError, match="has failed"):
        run.log_metrics({"loss": 0.1})
    run.finish("finished")  # an ended run stays as it ended
    assert project.runs.get(run.id).status == "failed"


def test_metrics_are_written_in_batches(project: Project) -> None:
    writes: list[int] = []
    store = project.metadata
    original = store.log_metrics

    def counting(points):  # type: ignore[no-untyped-def]
        writes.append(len(points))
        original(points)

    store.log_metrics = counting  # type: ignore[method-assign]
    with project.start_run("train") as run:
        for step in range(2_400):
            run.log_metrics({"loss": 1.0, "acc": 0.5}, step=step)
        assert writes == [1_000] * 4  # 4,800 points, written per 1,000 while running
    assert writes == [1_000] * 4 + [800]  # and the rest at the end
    assert len(project.runs.metric_history(run.id, "acc")) == 2_400


def test_old_buffered_points_are_flushed_by_the_next_log(project: Project) -> None:
    with project.start_run("train") as run:
        run._flush_seconds = 0.0  # every call now finds its buffer old enough
        run.log_metrics({"loss": 1.0})
        assert project.runs.get(run.id).metrics == {"loss": 1.0}


def test_nan_and_infinity_are_kept(project: Project) -> None:
    with project.start_run("train") as run:
        run.log_metrics({"loss": math.nan, "gain": math.inf})
    metrics = project.runs.get(run.id).metrics
    assert math.isnan(metrics["loss"]) and metrics["gain"] == math.inf


@pytest.mark.parametrize(("call", "message"), [
    (lambda run: run.log_metrics({"loss": "high"}), "not a number"),
    (lambda run: run.log_metrics({"ok": True}), "not a number"),
    (lambda run: run.log_metrics({"loss": 1.0}, step=1.5), "not an integer"),
    (lambda run: run.log_metrics({"bad key": 1.0}), "not a name"),
    (lambda run: run.log_params({"": 1}), "not a name"),
    (lambda run: run.log_inputs({"t": -1}), "not a version"),
    (lambda run: run.log_artifact("m", b"x", kind="nope"), "unknown artifact kind"),
    (lambda run: run.log_artifact("m", "no/such/file.txt"), "no such file"),
    (lambda run: run.finish("done"), "'finished' or 'failed'"),
    (lambda run: run.log_artifact("m", lambda: 1), "cannot be pickled"),
])
def test_bad_input_is_one_error(project: Project, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with project.start_run("train") as run, pytest.raises(InputError, match=message):
        call(run)
    assert project.runs.get(run.id).status == "finished"


def test_changing_a_param_is_refused(project: Project) -> None:
    with project.start_run("train") as run:
        run.log_params({"lr": 0.1})
        with pytest.raises(FlywheelError, match="params are fixed"):
            run.log_params({"lr": 0.2})


def test_get_by_prefix_and_unknown_runs(project: Project) -> None:
    with project.start_run("a") as run:
        pass
    assert project.runs.get(run.id[:8]).id == run.id
    with pytest.raises(RunNotFoundError, match="no run 0000"):
        project.runs.get("0000")
    with pytest.raises(RunNotFoundError, match="no run not-an-id"):
        project.runs.get("not-an-id")
    with pytest.raises(RunNotFoundError, match="no parent run"):
        project.start_run("child", parent_id="f" * 32)
    with pytest.raises(InputError, match="run name"):
        project.start_run("  ")


def test_search(project: Project) -> None:
    made = {}
    for i, (model, auc) in enumerate([("lgbm", 0.7), ("xgb", 0.9), ("lgbm", 0.8)]):
        with project.start_run("train" if i else "baseline", tags={"i": str(i)}) as run:
            run.log_params({"model": model, "lr": 0.1 * (i + 1)})
            run.log_metrics({"auc": auc})
        made[i] = run.id
    with project.start_run("child", parent_id=made[0]) as child:
        pass

    def ids(**kwargs):  # type: ignore[no-untyped-def]
        return [r.id for r in project.runs.search(**kwargs)]

    assert ids(order_by="metrics.auc desc") == [made[1], made[2], made[0], child.id]
    assert ids(order_by="metrics.auc asc", limit=1) == [made[0]]
    assert ids(params={"model": "lgbm"}, order_by="metrics.auc") == [made[2], made[0]]
    assert ids(where="metrics.auc > 0.75", name="train") == [made[2], made[1]]
    assert ids(where=["params.model = lgbm", "metrics.auc<0.75"]) == [made[0]]
    assert ids(params={"lr": 0.2}) == [made[1]]
    assert ids(tags={"i": "2"}) == [made[2]]
    assert ids(parent_id=made[0]) == [child.id]
    with pytest.raises(InputError, match="unknown run status"):
        project.runs.search(status="done")
    with pytest.raises(InputError, match="limit"):
        project.runs.search(limit=0)


def test_environment_records_git_state(project: Project) -> None:
    root = project.root

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    with project.start_run("outside") as outside:
        pass
    git("init", "-q")
    git("add", "flywheel.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x")
    project.close()  # reopened on next use: a fresh store, no git answer reused from above
    with project.start_run("clean") as clean:
        pass
    (root / "flywheel.yaml").write_text((root / "flywheel.yaml").read_text() + "\n# edit\n")
    project.close()
    with project.start_run("dirty") as dirty:
        pass

    assert (project.runs.get(outside.id).git_commit, project.runs.get(outside.id).git_dirty) \
        == (None, None)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert (project.runs.get(clean.id).git_commit, project.runs.get(clean.id).git_dirty) \
        == (head, False)
    assert project.runs.get(dirty.id).git_dirty is True


def _die_in_a_run(root: str) -> None:
    from flywheel.project import Project

    project = Project.open(root)
    project.start_run("doomed")
    os._exit(3)  # no finally, no atexit: as a kill would


def test_a_run_whose_process_died_is_failed_when_read(tmp_path: Path) -> None:
    import multiprocessing

    from flywheel.project import Project

    root = tmp_path / "p"
    Project.init(root).close()
    process = multiprocessing.get_context("spawn").Process(target=_die_in_a_run,
                                                           args=(str(root),))
    process.start()
    process.join(60)
    assert process.exitcode == 3
    with Project.open(root) as project:
        [run] = project.runs.search(name="doomed")
        assert run.status == "failed" and run.ended_at is not None
        assert "ended without finishing the run" in run.tags["flywheel.failure"]
        assert project.runs.get(run.id).status == "failed"  # and it stays so
        with project.start_run("alive") as alive:
            assert project.runs.get(alive.id).status == "running"  # a live one is not
