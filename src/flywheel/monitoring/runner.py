"""Evaluating monitors: the complete windows not kept yet, their results appended to the
monitor's table (`monitor_<name>`, a derived table like any other), then handed to the sink
(the alerts) — in that order, so an alert is about a row that is kept.

An evaluation computes only the windows its table lacks; a changed definition (or `full`,
or a replay) rebuilds the whole table from the inputs. Every window's figures depend only on
the rows of the log and derived tables (late feedback after a window's label delay does not
count), so the table a replay writes equals the one that was built evaluation by
evaluation, and both have the same content hash.

Two evaluations of one monitor at once (two `flywheel monitor run`, or one beside `flywheel
serve`) take turns on a file lock, so a window is never kept twice.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flywheel._core.hashing import sha256_text
from flywheel._core.metadata.table_versions import TableVersionRecord, TableVersions
from flywheel.log.lock import FileLock
from flywheel.monitoring.drift_windows import evaluate_drift
from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.inputs import InputSources, MonitorInput, open_input
from flywheel.monitoring.performance_windows import evaluate_performance, task_of
from flywheel.monitoring.reference import training_reference
from flywheel.monitoring.results import MonitorResult
from flywheel.monitoring.spec import MonitorsFile, MonitorSpec
from flywheel.monitoring.table import results_from_arrow, results_to_arrow
from flywheel.monitoring.windows import (
    Window,
    complete_windows,
    micros,
    micros_since_epoch,
    window_start_sql,
)
from flywheel.registry import ModelRegistry
from flywheel.tables.sql import duckdb_connection, quote_ident
from flywheel.tracking import RunStore

__all__ = ["FORMAT", "FULL", "INCREMENTAL", "MAX_WINDOWS", "UP_TO_DATE", "MonitorEvaluation",
           "MonitorRunner", "ResultSink", "RunnerSources", "code_hash"]

FORMAT = "flywheel-monitor/1"
"""Part of every monitor's code hash: a new format of results rebuilds the tables."""
MAX_WINDOWS = 100_000
FULL, INCREMENTAL, UP_TO_DATE = "full", "incremental", "up to date"

ResultSink = Callable[[MonitorSpec, Sequence[MonitorResult]], None]
"""Told of the rows of windows evaluated for the first time (the alerts)."""


class RunnerSources(InputSources, Protocol):
    @property
    def registry(self) -> ModelRegistry: ...

    @property
    def runs(self) -> RunStore: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorEvaluation:
    """What one evaluation of one monitor did."""

    monitor: str
    kind: str
    mode: str
    """`full`, `incremental` or `up to date`."""
    windows: int
    """Windows evaluated."""
    results: tuple[MonitorResult, ...]
    version: int | None
    """The results table's version after it."""
    horizon: str | None
    seconds: float

    @property
    def red(self) -> list[MonitorResult]:
        return [r for r in self.results if r.red]


class MonitorRunner:
    def __init__(self, *, monitors: MonitorsFile, sources: RunnerSources,
                 versions: TableVersions, lock_dir: Path, sink: ResultSink | None = None,
                 memory_limit: str = "2GB") -> None:
        self._file = monitors
        self._sources = sources
        self._versions = versions
        self._lock_dir = lock_dir
        self._sink = sink
        self._memory_limit = memory_limit

    def run(self, names: Iterable[str] | None = None, *, full: bool = False,
            on_start: Callable[[str], None] | None = None,
            on_done: Callable[[MonitorEvaluation], None] | None = None,
            ) -> list[MonitorEvaluation]:
        """Evaluate `names` (default: every monitor), in the file's order."""
        done = []
        for spec in self.specs(names):
            if on_start is not None:
                on_start(spec.name)
            evaluation = self._run_one(spec, full)
            done.append(evaluation)
            if on_done is not None:
                on_done(evaluation)
        return done

    def specs(self, names: Iterable[str] | None = None) -> list[MonitorSpec]:
        chosen = list(names or [])
        for name in chosen:
            if name not in self._file.monitors:
                known = ", ".join(self._file.monitors) or "none"
                raise MonitorSpecError(f"no monitor {name!r}", hint=f"known: {known}")
        return [s for s in self._file.monitors.values() if not chosen or s.name in chosen]

    def results(self, name: str) -> list[MonitorResult]:
        """Every kept row of the monitor `name` (none before its first evaluation)."""
        handle = self._sources.tables.handle(self.specs([name])[0].table)
        return results_from_arrow(handle.read()) if handle.exists() else []

    # One monitor -----------------------------------------------------------------------
    def _run_one(self, spec: MonitorSpec, full: bool) -> MonitorEvaluation:
        started = time.perf_counter()
        code = code_hash(spec)
        handle = self._sources.tables.handle(spec.table)
        with FileLock(self._lock_dir / f"monitor-{spec.name}.lock"):
            history = self._versions.table_versions(spec.table)
            kept = results_from_arrow(handle.read()) if handle.exists() else []
            rebuild = full or not history or history[-1].code_hash != code or not kept
            connection = duckdb_connection(self._memory_limit)
            try:
                source = open_input(connection, spec, self._sources)
                # Rows that arrived late, in a window already kept, change what a replay
                # would compute: the table is rebuilt so that it stays equal to one.
                rebuild = rebuild or _rows_changed(connection, spec, source, kept)
                new = self._evaluate(connection, spec, source, [] if rebuild else kept)
            finally:
                connection.close()
            seen = _lanes_of(kept)
            first_time = [r for r in new if _lane(r) not in seen]
            if rebuild:
                version: int | None = handle.overwrite(results_to_arrow(new))
            elif new:
                version = handle.append(results_to_arrow(new))
            else:
                version = handle.version()
            mode = FULL if rebuild else INCREMENTAL if new else UP_TO_DATE
            if mode != UP_TO_DATE and version is not None:
                self._record(spec, version, mode, code, source, len(new))
        if self._sink is not None and first_time:
            self._sink(spec, first_time)
        return MonitorEvaluation(
            monitor=spec.name, kind=spec.kind, mode=mode,
            windows=len({_lane(r) for r in new}), results=tuple(new), version=version,
            horizon=source.horizon.isoformat() if source.horizon else None,
            seconds=time.perf_counter() - started)

    def _evaluate(self, connection: Any, spec: MonitorSpec, source: MonitorInput,
                  kept: Sequence[MonitorResult]) -> list[MonitorResult]:
        done = _lanes_of(kept)

        def todo(lag_free: bool, estimated: bool = False) -> list[Window]:
            if source.first is None or source.horizon is None:
                return []
            horizon = source.horizon if lag_free else source.horizon - spec.label_delay
            windows = []
            for window in complete_windows(source.first, horizon, spec.window):
                if (estimated, window.start) not in done:
                    windows.append(window)
                if len(windows) > MAX_WINDOWS:
                    raise MonitorSpecError(
                        f"monitor {spec.name}: more than {MAX_WINDOWS:,} windows of "
                        f"{spec.window} to evaluate", hint="choose a larger `window:`")
            return windows

        if spec.kind == "quality":
            from flywheel.monitoring.quality import evaluate_quality

            return evaluate_quality(connection, spec, relation=source.relation,
                                    timestamp=source.timestamp, windows=todo(True),
                                    schema_before=_last_schema(kept))
        if spec.kind == "drift":
            reference = training_reference(registry=self._sources.registry,
                                           runs=self._sources.runs)
            return evaluate_drift(connection, spec, source, todo(True), reference_of=reference)
        task = task_of(connection, spec, source)
        return evaluate_performance(connection, spec, source, realised=todo(False),
                                    estimated=todo(True, True) if spec.estimate and
                                    task == "classification" else [], task=task)

    def _record(self, spec: MonitorSpec, version: int, mode: str, code: str,
                source: MonitorInput, rows_out: int) -> None:
        inputs = {key.partition(":")[2]: {"kind": key.partition(":")[0],
                                          "target": key.partition(":")[2], "after": -1,
                                          "upto": upto}
                  for key, upto in source.versions.items()}
        self._versions.add_table_version(TableVersionRecord(
            spec.table, version, mode, code, json.dumps(inputs, sort_keys=True), 0, rows_out))


def code_hash(spec: MonitorSpec) -> str:
    """What the results depend on: the definition (not where it was read from)."""
    return sha256_text(FORMAT + repr(dataclasses.replace(spec, source="", actions=(),
                                                         schedule=None)))


def _rows_changed(connection: Any, spec: MonitorSpec, source: MonitorInput,
                  kept: Sequence[MonitorResult]) -> bool:
    """Whether a kept window of a table or feature view now holds another number of rows
    than when it was evaluated. (A deployment's windows complete after the newest
    prediction, which the server stamps in order, and its late feedback is left out by
    design: they do not change.)"""
    if not kept or spec.target.kind == "deployment":
        return False
    counted: dict[Any, int] = {}
    for result in kept:
        counted[result.window_start] = max(counted.get(result.window_start, 0), result.rows)
    size = micros(spec.window)
    time = f"epoch_us({quote_ident(source.timestamp)})"
    last_end = max(r.window_end for r in kept)
    found = dict(connection.execute(
        f"SELECT {window_start_sql(time, size)}, count(*) FROM {source.relation} "
        f"WHERE {time} < {micros_since_epoch(last_end)} GROUP BY ALL").fetchall())
    now = {start: found.get(micros_since_epoch(start), 0) for start in counted}
    return now != counted or len(found) > len(counted)


def _lane(result: MonitorResult) -> tuple[bool, Any]:
    return (result.estimated, result.window_start)


def _lanes_of(results: Iterable[MonitorResult]) -> set[tuple[bool, Any]]:
    return {_lane(r) for r in results}


def _last_schema(kept: Sequence[MonitorResult]) -> dict[str, str] | None:
    for result in reversed(kept):
        if result.statistic == "schema_changes" and result.detail.startswith("{"):
            schema = json.loads(result.detail).get("schema")
            if isinstance(schema, dict):
                return {str(k): str(v) for k, v in schema.items()}
    return None
