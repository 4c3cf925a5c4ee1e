"""The runner: steps in dependency order, each a cache hit or a call on the executor.

For each step whose inputs are ready: compute its cache key; on a hit, record it and
move on (the output is not even loaded unless a step that runs needs it); on a miss,
load its inputs, submit it, store its output and point the cache entry at it. The run's
state is saved after every step, so a failed (or killed) run can be resumed.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel._core.artifacts import ArtifactError, ArtifactStore
from flywheel.pipelines._child import one_line
from flywheel.pipelines.cache import StepCache, StoredOutput, step_key
from flywheel.pipelines.codehash import code_hash
from flywheel.pipelines.dag import INPUT, STEP, Plan
from flywheel.pipelines.errors import StepFailedError
from flywheel.pipelines.executors import Executor, StepError, StepTask
from flywheel.pipelines.state import (
    CACHED,
    FAILED,
    FINISHED,
    RAN,
    REUSED,
    RUNNING,
    RunState,
    StepRecord,
    save_state,
)
from flywheel.pipelines.steps import Resources
from flywheel.pipelines.tracking import RunTracker, number_outputs

OnStart = Callable[[str], None]
OnDone = Callable[[StepRecord], None]


@dataclass
class RunInput:
    """A value offered to steps by name (the training set): stored, maybe also in memory."""

    output: StoredOutput
    value: Any = None
    convert: Callable[[Any, Any], Any] | None = None
    """(value, the parameter's annotation) -> the value as that parameter wants it."""


@dataclass
class Hooks:
    on_start: OnStart | None = None
    on_done: OnDone | None = None


class PipelineRun:
    """The outcome of a pipeline run: its steps, their outputs (loaded on demand)."""

    def __init__(self, state: RunState, cache: StepCache) -> None:
        self.state = state
        self._cache = cache
        self._loaded: dict[str, Any] = {}

    @property
    def id(self) -> str:
        return self.state.run_id

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def params(self) -> dict[str, Any]:
        return self.state.params

    @property
    def table_versions(self) -> dict[str, int]:
        return self.state.table_versions

    @property
    def steps(self) -> list[StepRecord]:
        return list(self.state.steps.values())

    def step(self, name: str) -> StepRecord:
        return self.state.steps[name]

    def output(self, step: str) -> Any:
        """The output of `step`, read from the artifact store (verified) on first use."""
        if step not in self._loaded:
            record = self.state.steps.get(step)
            if record is None or record.output is None:
                from flywheel.pipelines.errors import PipelineError

                raise PipelineError(f"step {step} has no output in run {self.id}",
                                    hint=f"steps: {', '.join(self.state.steps)}")
            self._loaded[step] = self._cache.load(record.output)
        return self._loaded[step]

    def __repr__(self) -> str:
        return f"PipelineRun(id={self.id!r}, name={self.name!r}, status={self.status!r})"


@dataclass
class Runner:
    plan: Plan
    state: RunState
    cache: StepCache
    executor: Executor
    tracker: RunTracker
    inputs: Mapping[str, RunInput]
    resources: Mapping[str, Resources]
    use_cache: bool = True
    hooks: Hooks = field(default_factory=Hooks)
    code_root: Path | None = None
    """The project folder: its modules that steps import are part of their code."""
    _values: dict[str, Any] = field(default_factory=dict)
    _readers: dict[str, int] = field(default_factory=dict)
    _codes: dict[str, str] = field(default_factory=dict)

    @property
    def artifacts(self) -> ArtifactStore:
        return self.cache.artifacts

    def execute(self) -> PipelineRun:
        """Run every step not yet succeeded; raise StepFailedError if one fails."""
        functions = [p.step.function for p in self.plan.steps.values()]
        self._codes = {n: code_hash(p.step.function, functions, self.code_root)
                       for n, p in self.plan.steps.items()}
        self._readers = {n: sum(n in p.upstream for p in self.plan.steps.values())
                         for n in self.plan.order}
        for record in self.state.steps.values():
            if record.status == REUSED:  # taken from the run being resumed
                self._begin(record.name)
                self._track(record)
                if self.hooks.on_done:
                    self.hooks.on_done(record)
        failed: StepRecord | None = None
        try:
            failed = self._loop()
        except BaseException as exc:  # interrupted: what finished stays resumable
            for record in self.state.steps.values():
                if record.status == RUNNING:
                    record.status, record.error = FAILED, f"interrupted ({type(exc).__name__})"
                    if self.tracker.is_open(record.name):
                        self._track(record)
            self._close(FAILED)
            raise
        if failed is None:
            self._close(FINISHED)
            return PipelineRun(self.state, self.cache)
        self._close(FAILED)
        raise StepFailedError(f"step {failed.name} failed: {failed.error}",
                              run_id=self.state.run_id, step=failed.name,
                              run=PipelineRun(self.state, self.cache))

    def _loop(self) -> StepRecord | None:
        records = self.state.steps
        pending = [n for n in self.plan.order if not records[n].succeeded]
        running: dict[Future[Any], tuple[str, str, float]] = {}
        failed: StepRecord | None = None
        while True:
            while failed is None and len(running) < max(self.executor.slots, 1):
                ready = next((n for n in pending if all(
                    records[u].succeeded for u in self.plan.steps[n].upstream)), None)
                if ready is None:
                    break
                pending.remove(ready)
                started = self._start(ready)
                if started is not None:
                    running[started[0]] = (ready, started[1], started[2])
                elif records[ready].status == FAILED:
                    failed = records[ready]
            if not running:
                return failed
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name, key, began = running.pop(future)
                record = self._finish(name, key, began, future)
                failed = failed or (record if record.status == FAILED else None)

    def _start(self, name: str) -> tuple[Future[Any], str, float] | None:
        """Begin step `name`: a cache hit finishes at once (None); else its future."""
        began = time.perf_counter()
        step_plan = self.plan.steps[name]
        record = self.state.steps[name]
        record.status, record.params = RUNNING, dict(step_plan.params)
        record.resources = self.resources[name].as_dict()
        self._begin(name)
        digests = {param: self._digest(binding.kind, binding.source)
                   for param, binding in step_plan.bindings.items()
                   if binding.kind in (STEP, INPUT)}
        tables = self.state.table_versions if step_plan.inputs else {}
        key = step_key(self._codes[name], step_plan.params, digests, tables)
        record.key = key
        hit = self.cache.lookup(key) if self.use_cache else None
        if hit is not None:
            for upstream in step_plan.upstream:
                self._release(upstream)
            self._done(record, CACHED, hit, began)
            return None
        try:
            kwargs = {param: self._value(binding.kind, binding.source, step_plan, param)
                      for param, binding in step_plan.bindings.items()
                      if binding.kind in (STEP, INPUT)}
        except ArtifactError as exc:
            self._fail(record, f"cannot load its inputs: {exc.message}", began)
            return None
        kwargs.update(step_plan.params)
        task = StepTask(name, step_plan.step.function, kwargs, self.resources[name])
        for upstream in step_plan.upstream:
            self._release(upstream)
        return self.executor.submit(task), key, began

    def _begin(self, name: str) -> None:
        self.state.steps[name].run_id = self.tracker.begin(name)
        if self.hooks.on_start:
            self.hooks.on_start(name)

    def _finish(self, name: str, key: str, began: float, future: Future[Any]) -> StepRecord:
        record = self.state.steps[name]
        try:
            value = future.result()
        except StepError as exc:
            record.details = exc.details
            return self._fail(record, exc.message, began)
        except Exception as exc:  # an executor that does not wrap its errors
            record.details = "".join(traceback.format_exception(exc))
            return self._fail(record, one_line(exc), began)
        try:
            output = self.cache.remember(key, self.cache.store(name, value))
        except Exception as exc:
            return self._fail(record, f"its output cannot be stored: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}", began)
        if self._readers.get(name):
            self._values[name] = value
        self._done(record, RAN, output, began)
        return record

    def _digest(self, kind: str, source: str) -> str:
        if kind == STEP:
            output = self.state.steps[source].output
            assert output is not None  # a step starts only after its inputs succeeded
            return output.digest
        return self.inputs[source].output.digest

    def _value(self, kind: str, source: str, step_plan: Any, param: str) -> Any:
        if kind == STEP:
            if source not in self._values:
                output = self.state.steps[source].output
                assert output is not None
                self._values[source] = self.cache.load(output)
            return self._values[source]
        given = self.inputs[source]
        if given.value is None:
            given.value = self.cache.load(given.output)
        if given.convert is None:
            return given.value
        return given.convert(given.value, step_plan.step.annotations.get(param))

    def _release(self, name: str) -> None:
        """One reader of `name` has its value: forget it once every reader has."""
        self._readers[name] -= 1
        if self._readers[name] <= 0:
            self._values.pop(name, None)

    def _done(self, record: StepRecord, status: str, output: StoredOutput,
              began: float) -> None:
        record.status, record.output, record.error = status, output, None
        record.seconds = time.perf_counter() - began
        self._track(record)
        self._save(record)

    def _fail(self, record: StepRecord, message: str, began: float) -> StepRecord:
        record.status, record.error = FAILED, message
        record.seconds = time.perf_counter() - began
        self._track(record)
        self._save(record)
        return record

    def _save(self, record: StepRecord) -> None:
        # A cache hit is not saved on its own: were the run to die, resuming finds it in
        # the cache again. What ran, or failed, is saved at once.
        if record.status != CACHED:
            save_state(self.artifacts, self.state)
        if self.hooks.on_done:
            self.hooks.on_done(record)

    def _track(self, record: StepRecord) -> None:
        self.tracker.step_done(record, self._codes.get(record.name, ""))

    def _close(self, status: str) -> None:
        self.state.status = status
        save_state(self.artifacts, self.state)
        self.tracker.close(self.state, status,
                           number_outputs(self.state, self._values, self.cache.load))
