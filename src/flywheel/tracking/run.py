"""`Run`: one tracked run, a context manager that records what happens inside it.

Metrics are buffered and written in batches (one statement for many points) when the
buffer fills, when it gets old, and when the run ends; everything else is written at once.
"""

from __future__ import annotations

import json
import numbers
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from flywheel._core.artifacts import ArtifactStore
from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError, InputError
from flywheel._core.metadata.runs import (
    RUN_STATUSES,
    MetricPoint,
    RunArtifactRecord,
    RunRecord,
    RunStatus,
    RunStorage,
)
from flywheel._core.text import first_line
from flywheel.tracking.kinds import get_kind, kind_of
from flywheel.tracking.query import check_key
from flywheel.tracking.training import training_tags

if TYPE_CHECKING:
    from flywheel.features.offline import HistoricalFeatures

FLUSH_POINTS = 1_000
"""Metric points buffered before a batch is written."""
FLUSH_SECONDS = 5.0
"""Oldest a buffered point gets before the next `log_metrics` writes the batch."""


class Run:
    """A tracked run: `with project.start_run("train") as run: run.log_metrics(...)`.

    Leaving the block marks it `finished`, or `failed` when an exception escapes.
    Safe to use from several threads.
    """

    def __init__(self, *, record: RunRecord, storage: RunStorage, artifacts: ArtifactStore,
                 scratch: Path,
                 flush_points: int = FLUSH_POINTS, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.id = record.id
        self.name = record.name
        self.parent_id = record.parent_id
        self._status: RunStatus = record.status
        self._storage = storage
        self._artifacts = artifacts
        self._scratch = scratch
        self._flush_points = flush_points
        self._flush_seconds = flush_seconds
        self._buffer: list[MetricPoint] = []
        self._oldest = 0.0
        self._next_step: dict[str, int] = {}
        self._lock = threading.RLock()

    @property
    def status(self) -> RunStatus:
        return self._status

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params (text; other values as JSON). A param cannot change once logged."""
        texts = {check_key(key, "param"): param_text(value) for key, value in params.items()}
        with self._lock:
            self._check_running()
            self._storage.log_params(self.id, texts)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Record metric values at `step`; without one, each key counts its own steps
        from 0. Buffered: written in batches, and at the end of the run."""
        known = self._next_step
        values = {(key if key in known else check_key(key, "metric")): _metric_value(key, value)
                  for key, value in metrics.items()}
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise InputError(f"metric step {step!r} is not an integer")
        now = utc_now()
        with self._lock:
            self._check_running()
            if not self._buffer:
                self._oldest = time.monotonic()
            for key, value in values.items():
                at = self._next_step.get(key, 0) if step is None else step
                self._next_step[key] = max(self._next_step.get(key, 0), at + 1)
                self._buffer.append(MetricPoint(self.id, key, value, at, now))
            if (len(self._buffer) >= self._flush_points
                    or time.monotonic() - self._oldest >= self._flush_seconds):
                self._flush()

    def log_metric(self, key: str, value: float, *, step: int | None = None) -> None:
        self.log_metrics({key: value}, step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags (text); a tag set again takes the new value."""
        texts = {check_key(key, "tag"): str(value) for key, value in tags.items()}
        with self._lock:
            self._check_running()
            self._storage.set_tags(self.id, texts)

    def log_inputs(self, table_versions: Mapping[str, int]) -> None:
        """Record the versions of the tables this run read (its training data)."""
        versions: dict[str, int] = {}
        for table, version in table_versions.items():
            if isinstance(version, bool) or not isinstance(version, int) or version < 0:
                raise InputError(f"version {version!r} of table '{table}' is not a version")
            versions[str(table)] = version
        with self._lock:
            self._check_running()
            self._storage.add_run_inputs(self.id, versions)

    def log_training_set(self, training: HistoricalFeatures) -> None:
        """Record a training set from `get_historical_features`: the versions of every
        table it read (the entity table too), its feature service and where its entity
        rows came from. A model registered from this run takes them as its lineage."""
        self.log_inputs(training.table_versions)
        self.set_tags(training_tags(training.lineage()))

    def log_artifact(self, name: str, value: Any, *, kind: str | None = None) -> str:
        """Store `value` (a path, bytes, a table, a JSON-able dict, a model...) in the
        project's artifact store under `name`; returns its sha256."""
        check_key(name, "artifact")
        chosen = get_kind(kind) if kind is not None else kind_of(value)
        with self._lock:
            self._check_running()
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch) as folder:
            file = Path(folder) / "artifact"
            chosen.dump(value, file)
            digest = self._artifacts.put_file(file)
            size = file.stat().st_size
        with self._lock:
            self._storage.add_run_artifacts(
                [RunArtifactRecord(self.id, name, digest, chosen.name, size)])
        return digest

    def flush(self) -> None:
        """Write buffered metric points now."""
        with self._lock:
            self._flush()

    def finish(self, status: str = "finished") -> None:
        """End the run (`finished` or `failed`), writing what is buffered. Ending an
        ended run does nothing."""
        if status not in RUN_STATUSES or status == "running":
            raise InputError(f"a run ends as 'finished' or 'failed', not {status!r}")
        ended = cast(RunStatus, status)
        with self._lock:
            if self._status != "running":
                return
            try:
                self._flush()
            finally:
                self._storage.end_run(self.id, ended, utc_now())
                self._status = ended

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.finish("finished")
            return
        try:
            reason = first_line(f"{type(exc).__name__}: {exc}", 500)
            self.set_tags({"flywheel.error": reason})
        finally:
            self.finish("failed")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r}, status={self._status!r})"

    def _flush(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self._storage.log_metrics(batch)

    def _check_running(self) -> None:
        if self._status != "running":
            raise FlywheelError(f"run {self.id} has {self._status}: it records nothing more",
                                hint="start a new run")


def param_text(value: Any) -> str:
    """How a param is stored: text as it is, other values as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def _metric_value(key: str, value: Any) -> float:
    if type(value) is float:
        return value  # the common case, without the slower checks below
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"metric '{key}' is {value!r}, not a number")
    return float(value)  # NaN and infinities are kept: a diverging loss is worth seeing
