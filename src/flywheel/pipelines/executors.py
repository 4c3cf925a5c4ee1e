"""Executors run one step call each, behind one small interface.

`submit(task)` returns a `concurrent.futures.Future`; the runner submits the steps whose
inputs are ready, up to `slots` at a time, and waits for any to finish. A cluster
executor fits the same shape (Ray: `ray.remote(...).options(num_cpus=...)
.remote(**kwargs).future()`). A failed call's future raises `StepError`: one line of
what went wrong, and the traceback text for those who ask.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flywheel.pipelines._child import FunctionRef, one_line
from flywheel.pipelines.errors import PipelineError
from flywheel.pipelines.steps import Resources, Step


class StepError(Exception):
    """Why a step call failed, in one line; `details` holds the traceback if there is one."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class StepTask:
    """One call of a step: the function, its keyword arguments, what it needs."""

    step: str
    function: Callable[..., Any]
    kwargs: Mapping[str, Any]
    resources: Resources


class Executor(Protocol):
    name: str
    slots: int
    """How many steps it runs at once."""

    def check(self, step: Step, resources: Resources) -> None:
        """Raise PipelineError, before anything runs, if it cannot run `step` with
        `resources`."""

    def submit(self, task: StepTask) -> Future[Any]: ...

    def close(self) -> None: ...


def _gpus() -> int:
    try:
        return len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    except OSError:
        return 0


def _memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


class LocalExecutor:
    """What both local executors share: resources are checked against this machine."""

    name = "local"
    slots = 1

    def check(self, step: Step, resources: Resources) -> None:
        cpus, memory, gpus = os.cpu_count() or 1, _memory(), _gpus()
        where = f"step {step.name} (executor {self.name})"
        hint = f"lower resources.{step.name} in the run spec"
        if resources.cpus > cpus:
            raise PipelineError(f"{where} asks for {resources.cpus:g} CPUs; this machine "
                                f"has {cpus}", hint=hint)
        if resources.memory and memory and resources.memory > memory:
            raise PipelineError(f"{where} asks for {resources.memory:,} bytes of memory; "
                                f"this machine has {memory:,}", hint=hint)
        if resources.gpus > gpus:
            raise PipelineError(f"{where} asks for {resources.gpus} GPU(s); this machine "
                                f"has {gpus}", hint=hint)

    def close(self) -> None:
        return None


class InProcessExecutor(LocalExecutor):
    """Calls the step in the runner's own thread: no copies, no start-up cost."""

    name = "inprocess"

    def submit(self, task: StepTask) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(task.function(**task.kwargs))
        except (Exception, SystemExit) as exc:
            future.set_exception(StepError(one_line(exc), traceback.format_exc()))
        return future


class ProcessExecutor(LocalExecutor):
    """Runs each step in a fresh interpreter: a step that crashes it (a segfault,
    `os._exit`) fails that step, not the runner. Inputs and the output cross the process
    boundary pickled; what the step prints goes to stderr. For isolation, not speed:
    each step pays an interpreter start and its own imports."""

    name = "process"

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots

    def check(self, step: Step, resources: Resources) -> None:
        super().check(step, resources)
        ref = FunctionRef.of(step.function)
        if "<locals>" in ref.qualname or "<lambda>" in ref.qualname:
            raise PipelineError(f"step {step.name} is defined inside a function; the "
                                "process executor imports steps by module and name",
                                hint="define it at the top level of a module")

    def submit(self, task: StepTask) -> Future[Any]:
        future: Future[Any] = Future()
        threading.Thread(target=self._run, args=(task, future), daemon=True,
                         name=f"flywheel-step-{task.step}").start()
        return future

    def _run(self, task: StepTask, future: Future[Any]) -> None:
        try:
            future.set_result(_call_in_child(task))
        except StepError as exc:
            future.set_exception(exc)
        except BaseException as exc:  # the future must always be resolved
            future.set_exception(StepError(one_line(exc), traceback.format_exc()))


def _call_in_child(task: StepTask) -> Any:
    payload = pickle.dumps((list(sys.path), FunctionRef.of(task.function), dict(task.kwargs)),
                           protocol=pickle.HIGHEST_PROTOCOL)
    try:
        child = subprocess.Popen([sys.executable, "-m", "flywheel.pipelines._child"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    except OSError as exc:
        raise StepError(f"cannot start its process: {one_line(exc)}") from None
    answer, _ = child.communicate(payload)
    if child.returncode != 0 or not answer:
        raise StepError(_death(child.returncode))
    try:
        status, value, details = pickle.loads(answer)
    except Exception as exc:
        raise StepError(f"its answer cannot be read: {one_line(exc)}") from None
    if status != "ok":
        raise StepError(str(value), str(details))
    return value


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"its process was killed by {name}"
    return f"its process exited with code {code} before returning a result"


def executor_for(name: str) -> Executor:
    """`inprocess` (the default) or `process`."""
    if name == "inprocess":
        return InProcessExecutor()
    if name == "process":
        return ProcessExecutor()
    raise PipelineError(f"no executor named '{name}'", hint="use inprocess or process")


