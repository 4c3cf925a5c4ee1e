"""Experiment tracking of a pipeline run: the shape of `flywheel.tracking.Run` the runner
needs, and `RunTracker`, which writes what the runner did to it.

A pipeline run is one tracking run; each step is a child run of it (`parent_id`), with
the step's params, its status and cache hit as tags, its duration as a metric, and the
digest of its output.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flywheel._core.hashing import canonical_json
from flywheel.pipelines.cache import StoredOutput
from flywheel.pipelines.spec import TRAINING_SET
from flywheel.pipelines.state import CACHED, FAILED, RAN, REUSED, RunState, StepRecord
from flywheel.tracking.training import bookkeeping_tags

RecordOutputs = Callable[[list[tuple[str, str, StoredOutput]]], None]
"""Records (run id, artifact name, stored output) as run artifacts."""

SMALL_OUTPUT = 256
"""Bytes: outputs no larger than this are checked for a number to log as a metric."""
_MISSING = object()


class Run(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_artifact(self, name: str, value: Any, *, kind: str | None = None) -> str: ...

    def log_inputs(self, table_versions: Mapping[str, int]) -> None: ...

    def finish(self, status: str = "finished") -> None: ...


class StartRun(Protocol):
    def __call__(self, name: str, *, parent_id: str | None = None,
                 tags: Mapping[str, str] | None = None) -> Run: ...


@dataclass
class RunTracker:
    """The tracking run of a pipeline run and the open child run of each step."""

    run: Run
    start_run: StartRun
    record_outputs: RecordOutputs | None = None
    _children: dict[str, Run] = field(default_factory=dict)

    def begin(self, name: str) -> str:
        """Open the child run of step `name`; its id."""
        # Tags are set once, when the step ends: each write is a metadata commit.
        child = self.start_run(f"{self.run.name}.{name}", parent_id=self.run.id)
        self._children[name] = child
        return child.id

    def is_open(self, name: str) -> bool:
        return name in self._children

    def step_done(self, record: StepRecord, code: str) -> None:
        """Close the step's child run: params, cache hit or miss, output, duration."""
        cache = {RAN: "miss", CACHED: "hit", REUSED: "reused"}.get(record.status, "miss")
        tags = {"flywheel.step": record.name, "flywheel.pipeline_run": self.run.id,
                "flywheel.status": record.status, "flywheel.cache": cache,
                "flywheel.cache_key": record.key or "", "flywheel.code": code}
        if record.output is not None:
            tags["flywheel.output"] = record.output.digest
            tags["flywheel.output_kind"] = record.output.kind
        if record.error:
            tags["flywheel.error"] = record.error[:500]
        if record.resources:
            tags["flywheel.resources"] = canonical_json(record.resources)
        child = self._children.pop(record.name)
        if record.params:
            child.log_params(record.params)
        child.set_tags({**tags, **bookkeeping_tags(["seconds"])})
        child.log_metrics({"seconds": record.seconds})
        child.finish("failed" if record.status == FAILED else "finished")

    def close(self, state: RunState, status: str, numbers: Mapping[str, float]) -> None:
        """Close the pipeline's run: outputs as artifacts, step counts and `numbers` as
        metrics, its status."""
        if self.record_outputs is not None:
            # Each output under its step's name on the run, and as `output` on the step's.
            done = [r for r in state.steps.values() if r.succeeded and r.output]
            items = [(self.run.id, r.name, r.output) for r in done if r.output]
            items += [(r.run_id, "output", r.output) for r in done if r.output and r.run_id]
            if state.training_set is not None:
                items.append((self.run.id, TRAINING_SET, state.training_set))
            self.record_outputs(items)
        counts: dict[str, int] = {}
        for record in state.steps.values():
            counts[record.status] = counts.get(record.status, 0) + 1
        steps = {f"steps_{k}": float(v) for k, v in sorted(counts.items())}
        self.run.log_metrics({**steps, **numbers})
        # A step named like a count (steps_ran) is a real metric: its output wins.
        self.run.set_tags({"flywheel.status": status,
                           **bookkeeping_tags([k for k in steps if k not in numbers])})
        self.run.finish("failed" if status == FAILED else "finished")


def number_outputs(state: RunState, values: Mapping[str, Any],
                   load: Callable[[StoredOutput], Any]) -> dict[str, float]:
    """A step that returns a number (an accuracy, a loss) is a metric of the run, under
    the step's name, whether it ran or came from the cache. `values` holds the outputs
    still in memory; `load` reads the others."""
    found: dict[str, float] = {}
    for record in state.steps.values():
        output = record.output
        if not record.succeeded or output is None or output.kind != "pickle" \
                or output.size > SMALL_OUTPUT:
            continue
        value = values.get(record.name, _MISSING)
        if value is _MISSING:
            try:
                value = load(output)
            except Exception:  # a damaged output fails the step that reads it, not this
                continue
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            found[record.name] = float(value)
    return found
