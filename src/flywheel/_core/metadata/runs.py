"""Run storage: tracked runs with their params, metrics, tags, artifacts and inputs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

RunStatus = Literal["running", "finished", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One tracked run: a pipeline execution or a block of code under `start_run`."""

    id: str
    name: str
    status: RunStatus
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    parent_id: str | None = None
    environment: str = "{}"
    """JSON: Python version, platform and the versions of the packages that matter."""
    git_commit: str | None = None
    git_dirty: bool | None = None
    """Uncommitted changes in the project's git work tree; None outside git."""


class MetricPoint(NamedTuple):
    """One value of a metric at a step. A NaN value is kept (stored as NULL).

    A named tuple: runs make hundreds of thousands of these, and tuples are cheap."""

    run_id: str
    key: str
    value: float
    step: int
    timestamp: dt.datetime


@dataclass(frozen=True, slots=True)
class RunArtifactRecord:
    run_id: str
    name: str
    sha256: str
    kind: str
    """How it was serialised, so it can be read back (see flywheel.tracking.kinds)."""
    size: int


@dataclass(frozen=True, slots=True)
class RunDetails:
    """What a run recorded besides its own row. `metrics` holds each key's latest value."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricPoint] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, RunArtifactRecord] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    """Table name -> the version the run read."""


Comparison = Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """One condition of a run search: `params.lr = 0.1`, `metrics.auc >= 0.8`, `tags.team = x`.

    Params and tags compare as text (`=` and `!=` only); metrics compare their latest value.
    """

    field: Literal["params", "metrics", "tags"]
    key: str
    op: Comparison
    value: str | float


@dataclass(frozen=True, slots=True)
class RunQuery:
    name: str | None = None
    status: RunStatus | None = None
    parent_id: str | None = None
    top_level: bool = False
    """Only runs without a parent (pipeline runs, not their steps' runs)."""
    filters: tuple[RunFilter, ...] = ()
    order_by: str | None = None
    """A metric key; runs without it come last. None orders by start time."""
    descending: bool = True
    limit: int = 100


class RunStorage(Protocol):
    """Storage of runs. Methods are batch-first: a run logs thousands of points."""

    def add_run(self, record: RunRecord, tags: Mapping[str, str] | None = None) -> None:
        """Record a new run, with its first tags in the same transaction; an id recorded
        before raises."""

    def end_run(self, run_id: str, status: RunStatus, ended_at: dt.datetime) -> None: ...

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """The runs of `run_ids` that exist, in the order asked."""

    def find_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids starting with `prefix` (to resolve a shortened id)."""

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Record params; one logged before with another value raises (params are fixed)."""

    def log_metrics(self, points: Sequence[MetricPoint]) -> None:
        """Append metric points in one batch and keep each key's latest value current."""

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags; a tag set before is overwritten."""

    def add_run_artifacts(self, records: Sequence[RunArtifactRecord]) -> None:
        """Record artifacts; one name per run (a name recorded before raises)."""

    def add_run_inputs(self, run_id: str, table_versions: Mapping[str, int]) -> None:
        """Record the table versions read; a table read twice at two versions raises."""

    def run_details(self, run_ids: Sequence[str]) -> dict[str, RunDetails]:
        """Params, latest metrics, tags, artifacts and inputs of many runs at once."""

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of one metric, by step then time."""

    def search_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching every condition, in one query whatever their number."""
