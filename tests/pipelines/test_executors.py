"""Executors: in-process and one process per step behind one interface; a step that
kills its interpreter fails that step, not the runner; resources are checked first."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from flywheel.pipelines import PipelineError, StepFailedError
from flywheel.pipelines.executors import InProcessExecutor, StepTask
from flywheel.pipelines.state import load_state
from flywheel.project import Project
from tests.pipelines.support import write_project

STEPS = '''
import ctypes
import os
import threading
import time

from flywheel.pipelines import Pipeline, step


def source(how: str = "ok") -> int:
    if how == "exit":
        os._exit(3)
    if how == "segfault":
        ctypes.string_at(0)
    if how == "raise":
        raise RuntimeError("no data\\ntoday")
    if how == "lock":
        return threading.Lock()
    if how == "pid":
        return os.getpid()
    return 20


def left(source: int, pause: float = 0.0) -> tuple:
    began = time.monotonic()
    time.sleep(pause)
    return (began, time.monotonic(), source + 1)


def right(source: int, pause: float = 0.0) -> tuple:
    began = time.monotonic()
    time.sleep(pause)
    return (began, time.monotonic(), source + 2)


@step(resources={"memory": "1MB"})
def both(left: tuple, right: tuple) -> int:
    return left[2] + right[2]


pipeline = Pipeline("crashy", steps=[source, left, right, both])
'''


@pytest.fixture
def svc(project: Project) -> Project:
    write_project(project.root, STEPS)
    return project


def run(svc: Project, **options: Any) -> Any:
    return svc.run("numbers.yaml", **options)


@pytest.mark.slow
def test_process_per_step_gives_the_same_results_and_cache(svc: Project) -> None:
    separate = run(svc, executor="process", params={"how": "pid"})
    assert separate.output("source") != __import__("os").getpid()
    assert separate.output("both") == 2 * separate.output("source") + 3
    again = run(svc, params={"how": "pid"})  # in process now: every key is the same
    assert {s.status for s in again.steps} == {"cached"}


@pytest.mark.slow
@pytest.mark.parametrize(("how", "message"), [
    ("exit", "step source failed: its process exited with code 3 before returning a result"),
    ("segfault", "step source failed: its process was killed by SIGSEGV"),
    ("raise", "step source failed: RuntimeError: no data today"),
    ("lock", "step source failed: its output cannot be sent back: TypeError: cannot pickle "
     "'_thread.lock' object"),
])
def test_a_crashing_step_fails_alone_and_the_run_resumes(svc: Project, how: str,
                                                         message: str) -> None:
    with pytest.raises(StepFailedError) as info:
        run(svc, executor="process", params={"how": how})
    assert str(info.value).startswith(message + " — fix it, then `flywheel run --resume")
    state = load_state(svc.artifacts, info.value.run_id)
    assert state.steps["source"].status == "failed"
    assert state.executor == "process"
    resumed = svc.run(resume=info.value.run_id, params={"how": "ok"})
    assert resumed.output("both") == 43


def test_in_process_a_step_that_exits_fails_without_ending_the_runner(svc: Project) -> None:
    path = svc.root / "pipelines" / "numbers.py"
    path.write_text(path.read_text().replace('    return 20\n',
                                             '    raise SystemExit(4)\n'))
    with pytest.raises(StepFailedError, match="step source failed: SystemExit: 4"):
        run(svc)


def test_resources_beyond_this_machine_are_refused_before_anything_runs(
        svc: Project) -> None:
    for resources, message in [
        ("{cpus: 4096}", "asks for 4096 CPUs; this machine has"),
        ("{memory: 1000TB}", "asks for 1,000,000,000,000,000 bytes of memory"),
        ("{gpus: 8}", "asks for 8 GPU(s); this machine has"),
    ]:
        (svc.root / "numbers.yaml").write_text(
            f"pipeline: pipelines/numbers.py:pipeline\nresources: {{left: {resources}}}\n")
        with pytest.raises(PipelineError, match=r"step left \(executor inprocess\) "
                           + message.replace("(", r"\(").replace(")", r"\)")):
            run(svc)
        assert svc.runs.search() == []
    (svc.root / "numbers.yaml").write_text(
        "pipeline: pipelines/numbers.py:pipeline\nresources: {lefty: {cpus: 1}}\n")
    with pytest.raises(PipelineError, match=r"resources for unknown step\(s\) lefty"):
        run(svc)


def test_the_process_executor_needs_steps_at_the_top_of_a_module(project: Project) -> None:
    write_project(project.root, '''
from flywheel.pipelines import Pipeline


def make():
    def inner() -> int:
        return 1
    return inner


pipeline = Pipeline("p", steps=[make()])
''')
    with pytest.raises(PipelineError, match="step inner is defined inside a function"):
        run(project, executor="process")
    assert run(project).output("inner") == 1


class ThreadExecutor(InProcessExecutor):
    """Two steps at once on threads: the interface a cluster executor fills."""

    name = "threads"
    slots = 2

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(2)
        self.threads: set[str] = set()

    def submit(self, task: StepTask) -> Future[Any]:
        def call() -> Any:
            self.threads.add(threading.current_thread().name)
            return task.function(**task.kwargs)

        return self.pool.submit(call)

    def close(self) -> None:
        self.pool.shutdown()


def test_an_executor_with_two_slots_runs_independent_steps_together(svc: Project) -> None:
    executor = ThreadExecutor()
    result = run(svc, executor=executor, params={"pause": 0.3})
    assert result.output("both") == 43
    left, right = result.output("left"), result.output("right")
    assert left[0] < right[1] and right[0] < left[1]  # their calls overlapped
    assert len(executor.threads) == 2
    assert result.state.executor == "threads"


def test_an_executor_whose_future_raises_fails_the_step(svc: Project) -> None:
    class Raw(ThreadExecutor):
        def submit(self, task: StepTask) -> Future[Any]:
            future: Future[Any] = Future()
            future.set_exception(OSError("node lost"))
            return future

    with pytest.raises(StepFailedError, match="step source failed: OSError: node lost"):
        run(svc, executor=Raw())


@pytest.mark.slow
def test_the_process_executor_works_from_a_script_without_a_main_guard(svc: Project) -> None:
    import subprocess
    import sys

    path = svc.root / "pipelines" / "numbers.py"
    path.write_text(path.read_text().replace("    return 20\n",
                                             "    print('hello from the step')\n"
                                             "    return 20\n"))
    script = svc.root / "train.py"
    script.write_text("from flywheel.project import Project\n"
                      f"project = Project.open({str(svc.root)!r})\n"
                      "run = project.run('numbers.yaml', executor='process')\n"
                      "print('both =', run.output('both'))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, cwd=svc.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "both = 43"  # the step's print went to stderr
    assert "hello from the step" in result.stderr
