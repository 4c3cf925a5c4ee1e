"""`project.runs`: start runs, find them, read what they recorded."""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from flywheel._core.artifacts import ArtifactStore
from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError, InputError
from flywheel._core.ids import new_id
from flywheel._core.metadata.runs import (
    RUN_STATUSES,
    MetricPoint,
    RunArtifactRecord,
    RunFilter,
    RunQuery,
    RunRecord,
    RunStatus,
    RunStorage,
)
from flywheel.tracking.environment import GitProbe, python_environment
from flywheel.tracking.kinds import get_kind
from flywheel.tracking.liveness import FAILURE_TAG, PID_TAG, process_is_gone, process_tags
from flywheel.tracking.query import check_key, parse_filter, parse_order
from flywheel.tracking.run import Run, param_text

MAX_LIMIT = 100_000
_ID_PREFIX = re.compile(r"^[0-9a-f]{4,32}$")


class StoredBlob(Protocol):
    """A blob already in the artifact store: its sha256, how it was serialised, its size."""

    @property
    def digest(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def size(self) -> int: ...


class RunNotFoundError(FlywheelError):
    http_status = 404


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run as recorded: its row and everything logged to it. `metrics` are latest values."""

    id: str
    name: str
    status: RunStatus
    started_at: dt.datetime
    ended_at: dt.datetime | None
    parent_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    environment: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, RunArtifactRecord] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    """Table name -> the version the run read."""

    @property
    def seconds(self) -> float | None:
        """How long the run took (None while it runs)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class RunStore:
    """Runs of one project: `start`, `get`, `search`, metric history and artifacts."""

    def __init__(self, *, storage: RunStorage, artifacts: ArtifactStore, root: Path,
                 scratch: Path) -> None:
        self._storage = storage
        self._artifacts = artifacts
        self._scratch = scratch
        self._git = GitProbe(root)

    def start(self, name: str, *, parent_id: str | None = None,
              tags: Mapping[str, str] | None = None) -> Run:
        """Record a new running run (with its environment) and return it."""
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InputError(f"run name {name!r} must be non-empty text of at most 255 "
                             "characters")
        store = self._storage
        if parent_id is not None and not store.get_runs([parent_id]):
            raise RunNotFoundError(f"no parent run {parent_id}")
        git = self._git.state()
        record = RunRecord(id=new_id().replace("-", ""), name=name, status="running",
                           started_at=utc_now(), parent_id=parent_id,
                           environment=json.dumps(python_environment(), sort_keys=True),
                           git_commit=git.commit, git_dirty=git.dirty)
        texts = {check_key(key, "tag"): str(value) for key, value in (tags or {}).items()}
        store.add_run(record, {**process_tags(), **texts})
        return Run(record=record, storage=store, artifacts=self._artifacts,
                   scratch=self._scratch)

    def get(self, run_id: str) -> RunInfo:
        """A run by id, or by a prefix of its id that no other run shares."""
        store = self._storage
        found = store.get_runs([run_id])
        if not found:
            found = store.get_runs(self._by_prefix(run_id))
        return self._infos(found)[0]

    def search(self, *, name: str | None = None, status: str | None = None,
               parent_id: str | None = None, top_level: bool = False,
               where: str | Sequence[str] = (),
               params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
               order_by: str | None = None, limit: int = 100) -> list[RunInfo]:
        """Runs matching every condition, newest first or by a metric.

        `where` takes conditions such as `"metrics.auc >= 0.8"` or `"params.model = lgbm"`;
        `params` and `tags` match exact values; `order_by` is `"metrics.KEY [asc|desc]"`;
        `top_level` leaves out runs that have a parent (a pipeline step's run).
        """
        query = self.query(name=name, status=status, parent_id=parent_id, where=where,
                           params=params, tags=tags, order_by=order_by, limit=limit)
        if top_level:
            query = replace(query, top_level=True)
        return self._infos(self._storage.search_runs(query))

    @staticmethod
    def query(*, name: str | None = None, status: str | None = None,
              parent_id: str | None = None, where: str | Sequence[str] = (),
              params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None,
              order_by: str | None = None, limit: int = 100) -> RunQuery:
        """The checked query `search` runs."""
        if status is not None and status not in RUN_STATUSES:
            raise InputError(f"unknown run status {status!r}",
                             hint="one of: " + ", ".join(RUN_STATUSES))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
            raise InputError(f"limit {limit!r} must be a whole number from 1 to {MAX_LIMIT:,}")
        conditions = [parse_filter(text) for text in ([where] if isinstance(where, str)
                                                      else where)]
        conditions += [RunFilter("params", check_key(k, "param"), "=", param_text(v))
                       for k, v in (params or {}).items()]
        conditions += [RunFilter("tags", check_key(k, "tag"), "=", str(v))
                       for k, v in (tags or {}).items()]
        key, descending = parse_order(order_by) if order_by is not None else (None, True)
        return RunQuery(name=name, status=status, parent_id=parent_id, filters=tuple(conditions),
                        order_by=key,
                        descending=descending, limit=limit)

    def record_outputs(self, items: Sequence[tuple[str, str, StoredBlob]]) -> None:
        """Record (run id, artifact name, blob) as run artifacts: blobs already in the
        artifact store (a pipeline's cached outputs), so nothing is stored twice."""
        self._storage.add_run_artifacts([
            RunArtifactRecord(run_id, name, blob.digest, blob.kind, blob.size)
            for run_id, name, blob in items])

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point logged for one metric of a run, by step."""
        return self._storage.metric_history(self.get(run_id).id, key)

    def load_artifact(self, run_id: str, name: str, *, dest: str | Path | None = None) -> Any:
        """An artifact of a run, read back as what was logged (verified by sha256 first).

        Files and folders are restored to `dest` (default: a new temporary folder) and
        their path returned."""
        info = self.get(run_id)
        record = info.artifacts.get(name)
        if record is None:
            known = ", ".join(sorted(info.artifacts)) or "none"
            raise InputError(f"run {info.id} has no artifact '{name}' (it has: {known})")
        kind = get_kind(record.kind)
        target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="flywheel-"))
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch) as folder:
            blob = self._artifacts.fetch(record.sha256, Path(folder) / "blob")
            if record.kind in ("file", "folder"):
                target = target / name if dest is None else target
            return kind.load(blob, target)

    def _by_prefix(self, run_id: str) -> list[str]:
        prefix = run_id.strip().lower()
        if not _ID_PREFIX.fullmatch(prefix):
            raise RunNotFoundError(f"no run {run_id}", hint="see `flywheel runs list`")
        found = self._storage.find_run_ids(prefix, limit=2)
        if len(found) > 1:
            raise InputError(f"run id prefix '{run_id}' is ambiguous",
                             hint="give more of the id")
        if not found:
            raise RunNotFoundError(f"no run {run_id}", hint="see `flywheel runs list`")
        return found

    def _mark_dead(self, record: RunRecord, tags: dict[str, str]) -> RunRecord:
        """A running run whose process ended without finishing it has failed."""
        store = self._storage
        ended = utc_now()
        reason = (f"its process (pid {tags.get(PID_TAG)}) ended without finishing the run")
        store.set_tags(record.id, {FAILURE_TAG: reason})
        store.end_run(record.id, "failed", ended)
        tags[FAILURE_TAG] = reason
        return replace(record, status="failed", ended_at=ended)

    def _infos(self, records: Sequence[RunRecord]) -> list[RunInfo]:
        details = self._storage.run_details([r.id for r in records])
        infos = []
        for record in records:
            detail = details[record.id]
            if record.status == "running" and process_is_gone(detail.tags):
                record = self._mark_dead(record, detail.tags)
            infos.append(RunInfo(
                id=record.id, name=record.name, status=record.status,
                started_at=record.started_at, ended_at=record.ended_at,
                parent_id=record.parent_id, git_commit=record.git_commit,
                git_dirty=record.git_dirty, environment=json.loads(record.environment),
                params=detail.params,
                metrics={key: point.value for key, point in detail.metrics.items()},
                tags=detail.tags, artifacts=detail.artifacts, inputs=detail.inputs))
        return infos
