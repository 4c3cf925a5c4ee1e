"""A performance monitor over windows: each window's predictions against their outcomes, per
member and model version (shadow members included: a challenger in shadow is judged on the
same traffic as the champion).

Realised figures count a window once it is `label_delay` old (its end plus the delay is at
or before the horizon), and only the feedback that arrived by then: a window's figures never
change afterwards, and a replay computes the same ones. Estimated figures (CBPE, `estimate:
true`) need no labels, so they come as soon as the window is complete, from the
probabilities of all its predictions; they are the rows with `estimated` true.

A classifier is read from `outputs.probability` and outcomes ≥ 0.5 are positives; a
regressor from `outputs.value`. A window with fewer labelled rows than `min_rows` gives
`unknown`, with the value when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flywheel.monitoring.estimate import ESTIMATED
from flywheel.monitoring.inputs import MonitorInput
from flywheel.monitoring.performance import CLASSIFICATION, REGRESSION, Metric
from flywheel.monitoring.results import MonitorResult, Status
from flywheel.monitoring.spec import Bound, MonitorSpec
from flywheel.monitoring.windows import Window

__all__ = ["DEFAULT_CLASSIFICATION", "DEFAULT_REGRESSION", "evaluate_performance",
           "metrics_of", "task_of"]

DEFAULT_CLASSIFICATION = ("auc", "log_loss", "accuracy", "calibration")
DEFAULT_REGRESSION = ("rmse", "mae")
_PROBABILITY = "TRY_CAST(json_extract_string(\"outputs\", '$.probability') AS DOUBLE)"
_VALUE = "TRY_CAST(json_extract_string(\"outputs\", '$.value') AS DOUBLE)"


def task_of(connection: Any, spec: MonitorSpec, source: MonitorInput) -> str:
    """The monitor's task, or the one its predictions show (a probability: classification)."""
    if spec.task is not None:
        return spec.task
    found = connection.execute(f"SELECT count({_PROBABILITY}) FROM {source.relation}"
                               ).fetchone()[0]
    return "classification" if found else "regression"


def metrics_of(spec: MonitorSpec, task: str) -> dict[str, Bound | None]:
    """The metrics to compute, with their bounds (None: shown, never red)."""
    if spec.metrics:
        return dict(spec.metrics)
    names = DEFAULT_CLASSIFICATION if task == "classification" else DEFAULT_REGRESSION
    return dict.fromkeys(names)


def evaluate_performance(connection: Any, spec: MonitorSpec, source: MonitorInput, *,
                         realised: Sequence[Window], estimated: Sequence[Window] = (),
                         task: str) -> list[MonitorResult]:
    metrics = metrics_of(spec, task)
    results: list[MonitorResult] = []
    for windows, is_estimate in ((realised, False), (estimated, True)):
        if not windows:
            continue
        table = _predictions(connection, source, windows, task)
        functions: Mapping[str, Metric] = ESTIMATED if is_estimate else (
            CLASSIFICATION if task == "classification" else REGRESSION)
        chosen = {m: b for m, b in metrics.items() if m in functions}
        for window in windows:
            results += _window_rows(spec, window, table, chosen, functions, is_estimate)
    return results


def _predictions(connection: Any, source: MonitorInput, windows: Sequence[Window],
                 task: str) -> dict[str, np.ndarray]:
    predicted = _PROBABILITY if task == "classification" else _VALUE
    time = f'"{source.timestamp}"'
    rows = connection.execute(
        f"SELECT epoch_us({time}), member, model_version, {predicted}, outcome "
        f"FROM {source.relation} WHERE {time} >= ? AND {time} < ? AND {predicted} IS NOT NULL "
        "ORDER BY ALL", [windows[0].start, windows[-1].end]).fetchnumpy()
    keys = ("at", "member", "model_version", "predicted", "outcome")
    return {k: np.asarray(rows[c]) for k, c in zip(keys, rows, strict=True)}


def _window_rows(spec: MonitorSpec, window: Window, table: Mapping[str, np.ndarray],
                 metrics: Mapping[str, Bound | None], functions: Mapping[str, Metric],
                 estimated: bool) -> list[MonitorResult]:
    start = int(window.start.timestamp() * 1_000_000)
    end = int(window.end.timestamp() * 1_000_000)
    inside = (table["at"] >= start) & (table["at"] < end)
    results = []
    groups = sorted({(str(m), int(v)) for m, v in zip(table["member"][inside],
                                                     table["model_version"][inside],
                                                     strict=True)})
    for member, version in groups:
        chosen = inside & (table["member"] == member) & (table["model_version"] == version)
        outcome = np.asarray(table["outcome"][chosen], dtype=float)
        predicted = np.asarray(table["predicted"][chosen], dtype=float)
        if not estimated:
            labelled = ~np.isnan(outcome)
            outcome, predicted = outcome[labelled], predicted[labelled]
        for metric, bound in metrics.items():
            y = (outcome >= 0.5).astype(float) if metric not in ("rmse", "mae") else outcome
            value = functions[metric](y, predicted) if len(predicted) else None
            results.append(_row(spec, window, metric, value, bound, len(predicted), member,
                                version, estimated))
    if not groups:
        results += [_row(spec, window, metric, None, bound, 0, None, None, estimated)
                    for metric, bound in metrics.items()]
    return results


def _row(spec: MonitorSpec, window: Window, metric: str, value: float | None,
         bound: Bound | None, rows: int, member: str | None, version: int | None,
         estimated: bool) -> MonitorResult:
    status: Status = "unknown" if value is None or rows < spec.min_rows else (
        "red" if bound is not None and bound.broken_by(value) else "ok")
    what = "predictions" if estimated else "labelled predictions"
    return MonitorResult(
        monitor=spec.name, kind="performance", window_start=window.start,
        window_end=window.end, subject=metric, statistic=metric,
        value=None if value is None else float(value),
        threshold=bound.threshold if bound is not None else None, status=status, rows=rows,
        member=member, model_version=version, estimated=estimated,
        detail=f"{rows:,} {what}" + (_bound_text(bound) if bound is not None else ""))


def _bound_text(bound: Bound) -> str:
    parts = [f"min {bound.min:g}" if bound.min is not None else "",
             f"max {bound.max:g}" if bound.max is not None else ""]
    return "; " + ", ".join(p for p in parts if p)
