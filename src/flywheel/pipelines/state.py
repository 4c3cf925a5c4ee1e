"""The persisted state of a pipeline run: enough to resume it from where it failed.

Saved after every step as a JSON blob in the artifact store, under the ref
`pipeline-runs/<run id>`: the spec, the params, the training set's digest and table
versions, and for each step its status, cache key, params and output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flywheel._core.artifacts import ArtifactError, ArtifactStore
from flywheel.pipelines.cache import StoredOutput
from flywheel.pipelines.errors import PipelineError

PENDING, RUNNING, RAN, CACHED, REUSED, FAILED = (
    "pending", "running", "ran", "cached", "reused", "failed")
SUCCEEDED = frozenset({RAN, CACHED, REUSED})
"""A step in one of these has its output stored."""
FINISHED = "finished"
FORMAT = 1


@dataclass
class StepRecord:
    """How one step went in one run."""

    name: str
    status: str = PENDING
    key: str | None = None
    output: StoredOutput | None = None
    seconds: float = 0.0
    error: str | None = None
    details: str = ""
    """The traceback of a failure, when there is one."""
    params: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    """The step's child run in tracking."""

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCEEDED

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "key": self.key,
                "output": self.output.to_json() if self.output else None,
                "seconds": self.seconds, "error": self.error, "details": self.details,
                "params": self.params, "resources": self.resources, "run_id": self.run_id}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> StepRecord:
        output = value.get("output")
        return cls(value["name"], value["status"], value.get("key"),
                   StoredOutput.from_json(output) if output else None,
                   float(value.get("seconds", 0.0)), value.get("error"),
                   value.get("details", ""), dict(value.get("params") or {}),
                   dict(value.get("resources") or {}), value.get("run_id"))


@dataclass
class RunState:
    run_id: str
    name: str
    spec: dict[str, Any]
    """The run spec as validated (see `spec.RunSpec`), params overrides not applied."""
    params: dict[str, Any]
    """The params of this run: the spec's, with overrides applied."""
    executor: str
    status: str = RUNNING
    training_set: StoredOutput | None = None
    table_versions: dict[str, int] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    resumed_from: str | None = None
    spec_path: str | None = None
    training_rows: int | None = None
    """Rows of the training set (None: no training data, or a state saved before)."""
    error: str | None = None
    """Why the run failed before any step ran (an empty training set)."""
    training_lineage: dict[str, Any] | None = None
    """Where the training set came from (see `HistoricalFeatures.lineage`)."""

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "run_id": self.run_id, "name": self.name,
                "spec": self.spec, "params": self.params, "executor": self.executor,
                "status": self.status,
                "training_set": self.training_set.to_json() if self.training_set else None,
                "table_versions": self.table_versions,
                "steps": [s.to_json() for s in self.steps.values()],
                "resumed_from": self.resumed_from, "spec_path": self.spec_path,
                "training_rows": self.training_rows, "error": self.error,
                "training_lineage": self.training_lineage}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RunState:
        training = value.get("training_set")
        steps = [StepRecord.from_json(s) for s in value.get("steps", [])]
        return cls(value["run_id"], value["name"], dict(value["spec"]),
                   dict(value.get("params") or {}), value.get("executor", "inprocess"),
                   value.get("status", RUNNING),
                   StoredOutput.from_json(training) if training else None,
                   {k: int(v) for k, v in (value.get("table_versions") or {}).items()},
                   {s.name: s for s in steps}, value.get("resumed_from"),
                   value.get("spec_path"), value.get("training_rows"), value.get("error"),
                   value.get("training_lineage"))


def _ref(run_id: str) -> str:
    return f"pipeline-runs/{run_id}"


def save_state(artifacts: ArtifactStore, state: RunState) -> None:
    digest = artifacts.put_bytes(json.dumps(state.to_json(), sort_keys=True,
                                            default=repr).encode())
    artifacts.set_ref(_ref(state.run_id), digest)


def load_state(artifacts: ArtifactStore, run_id: str) -> RunState:
    """The saved state of pipeline run `run_id`."""
    try:
        digest = artifacts.get_ref(_ref(run_id))
    except ArtifactError:
        digest = None
    if digest is None:
        raise PipelineError(f"no pipeline run '{run_id}' in {artifacts.url}",
                            hint="`flywheel runs list` shows the runs; use a pipeline run's id")
    try:
        return RunState.from_json(json.loads(artifacts.get_bytes(digest)))
    except (ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"the saved state of pipeline run {run_id} cannot be read: "
                            f"{exc}") from None
