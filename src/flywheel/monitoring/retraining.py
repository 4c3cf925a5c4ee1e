"""Retraining: train a challenger on fresh data, judge it against the champion on the newest
labelled rows (held out from its training), then promote it, offer it, or keep the champion.

The held-out window is the policy's `holdout` back from the newest timestamp of the
evaluation table (never the wall clock, so the same data gives the same decision). The
pipeline receives the window's start as the param `until` and trains on rows before it.
Both models are scored on the same rows: the window's labelled rows that have every
feature of both models, looked up point in time through each model's feature service.

The outcome:
- `promoted`: the challenger beats the champion by the margin on at least `min_rows` rows
  (or there is no champion yet), and the policy promotes automatically;
- `challenger`: it wins but the policy wants approval, or there were fewer than `min_rows`
  rows (too little evidence either way): it becomes `challenger` for a person to decide;
- `rejected`: it does not win: it stays registered, without an alias;
- `failed`: the run or the evaluation could not be made (the reason says why).

Every step is traceable: the run is tagged with the alert, the version is registered from
the run, the alias move's reason names the alert, the run and the figures, and the
decision itself is kept in metadata.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError, InputError
from flywheel._core.metadata.alerts import (
    AlertRecord,
    AlertStore,
    DecisionOutcome,
    RetrainingDecision,
)
from flywheel._core.metadata.runs import RunStorage
from flywheel._core.metadata.store import MetadataStore
from flywheel.features.store import FeatureStore
from flywheel.monitoring.alerts import Alerts
from flywheel.monitoring.delivery import Delivery
from flywheel.monitoring.policy import ActionSpec, RetrainingSpec
from flywheel.monitoring.scores import score
from flywheel.pipelines.launch import load_pipeline
from flywheel.pipelines.runner import PipelineRun
from flywheel.pipelines.spec import load_spec
from flywheel.registry import ModelRegistry, ModelVersion
from flywheel.registry.flavors import predict_matrix
from flywheel.registry.store import ModelNotFoundError
from flywheel.transforms.store import DerivedTables

__all__ = ["ACTOR", "ALERT_TAG", "POLICY_TAG", "TRIGGER_TAG", "UNTIL", "Retrainer",
           "RetrainingError", "RetrainingProject", "SinkProject", "alert_sink"]

UNTIL = "until"
"""The pipeline param that receives the held-out window's start (ISO 8601 text)."""
ACTOR = "flywheel retraining"
ALERT_TAG = "flywheel.alert_id"
POLICY_TAG = "flywheel.retraining"
TRIGGER_TAG = "flywheel.trigger"
_PROBABILITY_METRICS = ("auc", "log_loss")


class RetrainingError(InputError):
    """A retraining that cannot be made as its policy says."""


class RetrainingProject(Protocol):
    """What retraining uses of a project."""

    @property
    def root(self) -> Path: ...

    @property
    def registry(self) -> ModelRegistry: ...

    @property
    def features(self) -> FeatureStore: ...

    @property
    def tables(self) -> DerivedTables: ...

    def run(self, spec: str | Path | None = None, *,
            params: Mapping[str, Any] | None = None) -> PipelineRun: ...


@dataclass(frozen=True, slots=True)
class _Holdout:
    start: dt.datetime
    end: dt.datetime
    rows: pa.Table
    """The evaluation table's rows in [start, end], with a label."""


class Retrainer:
    """Runs retraining policies; each decision is kept in `store` and returned."""

    def __init__(self, *, project: RetrainingProject, store: AlertStore, runs: RunStorage,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._project = project
        self._store = store
        self._runs = runs
        """Where the run is tagged with the alert that started it."""
        self._now = clock

    def __call__(self, spec: RetrainingSpec, alert: AlertRecord) -> Delivery:
        """The alerts' hook: retrain for `alert`; a failed decision is a failed delivery."""
        decision = self.retrain(spec, alert)
        return Delivery(ok=decision.outcome != "failed", detail=decision.reason)

    def retrain(self, spec: RetrainingSpec, alert: AlertRecord | None = None,
                ) -> RetrainingDecision:
        """Train, judge and decide; what cannot be done is a `failed` decision, kept."""
        trigger = _trigger(spec, alert)
        run_id: str | None = None
        try:
            holdout = self._holdout(spec)
            _check_takes_until(self._project.root, spec)
            run = self._project.run(spec.pipeline,
                                    params={**spec.params, UNTIL: holdout.start.isoformat()})
            run_id = run.id
            self._runs.set_tags(run.id, _tags(spec, alert))
            challenger = self._project.registry.register(spec.model, run_id=run.id)
            return self._decide(spec, alert, trigger, run.id, challenger, holdout)
        except FlywheelError as exc:
            return self._keep(spec, alert, run_id=run_id, outcome="failed",
                              reason=f"{trigger}: failed: {exc.one_line()}")

    def _holdout(self, spec: RetrainingSpec) -> _Holdout:
        evaluation = spec.evaluation
        table = self._project.tables.read(evaluation.table)
        for column in (evaluation.timestamp, evaluation.label):
            if column not in table.column_names:
                raise RetrainingError(f"evaluation table {evaluation.table} has no column "
                                      f"{column}",
                                      hint=f"its columns: {', '.join(table.column_names)}")
        labelled = table.filter(pc.is_valid(table[evaluation.label]))
        newest = pc.max(labelled[evaluation.timestamp]).as_py() if labelled.num_rows else None
        if newest is None:
            raise RetrainingError(f"evaluation table {evaluation.table} has no labelled rows")
        end = newest if newest.tzinfo else newest.replace(tzinfo=dt.UTC)
        start = end - spec.holdout
        window = labelled.filter(pc.greater_equal(
            labelled[evaluation.timestamp], pa.scalar(start, labelled[evaluation.timestamp].type)))
        return _Holdout(start, end, window)

    def _decide(self, spec: RetrainingSpec, alert: AlertRecord | None, trigger: str,
                run_id: str, challenger: ModelVersion, holdout: _Holdout) -> RetrainingDecision:
        registry = self._project.registry
        try:
            champion: ModelVersion | None = registry.get(f"{spec.model}@champion")
        except ModelNotFoundError:
            champion = None
        judged = [challenger] if champion is None else [challenger, champion]
        labels, predictions = self._score_inputs(spec, judged, holdout)
        rows = len(labels)
        theirs = score(spec.metric, labels, predictions[0]) if rows else None
        ours = score(spec.metric, labels, predictions[1]) if rows and champion else None
        outcome, verdict = _verdict(spec, rows, theirs, ours, champion is not None)
        figures = _figures(spec, theirs, ours, rows)
        reason = f"{trigger}: {figures}: {verdict} (run {run_id[:8]}, version " \
                 f"{challenger.version})"
        if outcome == "promoted":
            registry.set_alias(spec.model, "champion", version=challenger.version,
                               reason=reason, actor=ACTOR)
        elif outcome == "challenger":
            registry.set_alias(spec.model, "challenger", version=challenger.version,
                               reason=reason, actor=ACTOR)
        return self._keep(spec, alert, run_id=run_id, outcome=outcome, reason=reason,
                          champion=champion, challenger=challenger, rows=rows,
                          values=(ours, theirs))

    def _score_inputs(self, spec: RetrainingSpec, models: list[ModelVersion],
                      holdout: _Holdout) -> tuple[list[float], list[list[float]]]:
        """The labels and each model's predictions on the rows every model can score."""
        evaluation = spec.evaluation
        entities = holdout.rows.drop_columns([evaluation.label]).append_column(
            "__row", pa.array(range(holdout.rows.num_rows), pa.int64()))
        matrices: list[tuple[Any, list[str]]] = []
        usable = pa.array([True] * holdout.rows.num_rows)
        for version in models:
            service = version.signature.get("feature_service")
            columns = version.signature.get("inputs") or version.signature.get("features")
            if not service or not columns:
                raise RetrainingError(f"model {version.uri} names no feature service and "
                                      "inputs, so it cannot be scored on the holdout")
            found = self._project.features.get_historical_features(
                entities, feature_service=service, timestamp_column=evaluation.timestamp).table
            found = found.sort_by("__row")
            for column in columns:
                usable = pc.and_(usable, pc.is_valid(found[column]))
            matrices.append((found, list(columns)))
        labels = holdout.rows[evaluation.label].filter(usable).to_pylist()
        predictions = [self._predict(version, found.filter(usable), columns, spec.metric)
                       for version, (found, columns) in zip(models, matrices, strict=True)]
        return [float(v) for v in labels], predictions

    def _predict(self, version: ModelVersion, rows: pa.Table, columns: list[str],
                 metric: str) -> list[float]:
        import numpy as np

        if not rows.num_rows:
            return []
        loaded = self._project.registry.load(version.uri)
        matrix = np.column_stack([rows[c].to_numpy(zero_copy_only=False).astype(float)
                                  for c in columns])
        if metric in _PROBABILITY_METRICS:
            values = predict_matrix(loaded.model, version.flavor, matrix, columns, proba=True)
            return [float(v) for v in np.asarray(values)[:, -1]]
        values = predict_matrix(loaded.model, version.flavor, matrix, columns)
        return [float(v) for v in np.asarray(values).ravel()]

    def _keep(self, spec: RetrainingSpec, alert: AlertRecord | None, *, run_id: str | None,
              outcome: DecisionOutcome, reason: str, champion: ModelVersion | None = None,
              challenger: ModelVersion | None = None, rows: int = 0,
              values: tuple[float | None, float | None] = (None, None),
              ) -> RetrainingDecision:
        return self._store.add_decision(RetrainingDecision(
            policy=spec.name, model=spec.model, alert_id=alert.id if alert else None,
            run_id=run_id, champion_version=champion.version if champion else None,
            challenger_version=challenger.version if challenger else None,
            metric=spec.metric, champion_value=values[0], challenger_value=values[1],
            rows=rows, outcome=outcome, reason=reason, decided_at=self._now()))


def _trigger(spec: RetrainingSpec, alert: AlertRecord | None) -> str:
    if alert is None:
        return f"retraining {spec.name} by hand"
    if alert.kind == "schedule":
        return f"retraining {spec.name} on its schedule (alert {alert.id})"
    return f"retraining {spec.name} after alert {alert.id}"


def _tags(spec: RetrainingSpec, alert: AlertRecord | None) -> dict[str, str]:
    tags = {POLICY_TAG: spec.name, TRIGGER_TAG: _trigger(spec, alert)}
    if alert is not None and alert.id is not None:
        tags[ALERT_TAG] = str(alert.id)
    return tags


def _check_takes_until(root: Path, spec: RetrainingSpec) -> None:
    path = Path(spec.pipeline)
    pipeline = load_pipeline(load_spec(path if path.is_absolute() else root / path).pipeline,
                             root)
    if not any(UNTIL in step.parameters for step in pipeline.steps.values()):
        raise RetrainingError(
            f"pipeline {pipeline.name} takes no `{UNTIL}` param, so it would train on the "
            "held-out rows",
            hint=f"add `{UNTIL}: str | None = None` to the step that reads training_set and "
            "keep the rows before it")


def _verdict(spec: RetrainingSpec, rows: int, theirs: float | None, ours: float | None,
             has_champion: bool) -> tuple[DecisionOutcome, str]:
    if rows < spec.min_rows:
        return "challenger", f"fewer rows than min_rows {spec.min_rows:,}, registered as " \
            "challenger for approval"
    if has_champion:
        assert theirs is not None and ours is not None
        gain = ours - theirs if spec.lower_is_better else theirs - ours
        if not (gain > 0 and gain >= spec.margin):
            return "rejected", "not promoted, the champion stays"
    if spec.promote == "approval":
        return "challenger", "registered as challenger (promote: approval)"
    return "promoted", "promoted"


def _figures(spec: RetrainingSpec, theirs: float | None, ours: float | None, rows: int) -> str:
    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    against = f" vs {shown(ours)}" if ours is not None else " (no champion yet)"
    return f"{spec.metric} {shown(theirs)}{against} on {rows:,} rows (margin {spec.margin:g})"


class SinkProject(RetrainingProject, Protocol):
    """A project whose metadata keeps alerts and runs (`Project` is one)."""

    @property
    def metadata(self) -> MetadataStore: ...


def alert_sink(project: SinkProject, *, actions: Mapping[str, ActionSpec],
               retraining: Mapping[str, RetrainingSpec],
               clock: Callable[[], dt.datetime] = utc_now) -> Alerts:
    """The result sink of a project's monitors: its actions, and its retraining policies
    run by a `Retrainer` over the project."""
    store = project.metadata
    return Alerts(store=store, actions=actions, retraining=retraining,
                  retrain=Retrainer(project=project, store=store, runs=store, clock=clock),
                  clock=clock)
