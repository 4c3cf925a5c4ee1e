"""What a red monitor sets off: the `actions:` and `retraining:` sections of `monitors.yaml`.

```yaml
actions:
  ops:                      # a webhook: POST of a JSON body naming monitor, window, value
    webhook: http://127.0.0.1:9000/hook
    cooldown: 1h            # at most one alert per monitor and action within it
  page:
    command: ["notify", "--urgent"]   # run with the alert's JSON on standard input
  note:
    log: warning            # a log line (`info`, `warning` or `error`)
retraining:
  retrain_purchase:         # also usable as an action name
    pipeline: pipelines/train.yaml
    model: purchase
    deployment: purchase
    evaluation: {table: training_labels, label: label, timestamp: event_time}
    holdout: 7d             # the newest labelled window, held out from training
    metric: auc
    margin: 0.01            # the challenger must beat the champion by this much
    min_rows: 200           # and be evaluated on at least these many labelled rows
    promote: auto           # or `approval`: registered as `challenger`, not promoted
    schedule: 7d            # optional: also retrain on this schedule
    cooldown: 1d            # optional: at most one alert-started retraining within it
```

A retraining's pipeline receives the held-out window's start as the param `until` (ISO 8601
text): the step that reads `training_set` keeps only the rows before it, so the challenger
never trains on the rows it is judged on.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flywheel.features.definitions import parse_duration
from flywheel.monitoring.errors import MonitorSpecError

__all__ = [
    "DEFAULT_COOLDOWN",
    "DEFAULT_RETRAIN_COOLDOWN",
    "LOG_LEVELS",
    "METRICS",
    "ActionSpec",
    "EvaluationSpec",
    "RetrainingSpec",
    "parse_actions",
    "parse_retraining",
]

DEFAULT_COOLDOWN = dt.timedelta(hours=1)
DEFAULT_RETRAIN_COOLDOWN = dt.timedelta(days=1)
LOG_LEVELS = ("info", "warning", "error")
METRICS = ("auc", "log_loss", "accuracy", "precision", "recall", "rmse", "mae")
"""Metrics a retraining policy can compare on; `log_loss`, `rmse` and `mae` are better low."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_ACTION_KINDS = ("webhook", "command", "log")
_ACTION_KEYS = (*_ACTION_KINDS, "cooldown", "timeout")
_RETRAIN_KEYS = ("pipeline", "model", "deployment", "evaluation", "holdout", "metric",
                 "margin", "min_rows", "promote", "schedule", "params", "cooldown")
_EVALUATION_KEYS = ("table", "label", "timestamp")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    name: str
    kind: Literal["webhook", "command", "log"]
    target: str | tuple[str, ...]
    """The URL, the command's argv, or the log level."""
    cooldown: dt.timedelta = DEFAULT_COOLDOWN
    timeout: float = 10.0
    """Seconds a webhook or command may take."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationSpec:
    table: str
    """A derived table with the entity keys, a timestamp and the label."""
    label: str
    timestamp: str = "event_time"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrainingSpec:
    name: str
    pipeline: str
    model: str
    deployment: str | None
    evaluation: EvaluationSpec
    holdout: dt.timedelta
    metric: str = "auc"
    margin: float = 0.0
    min_rows: int = 100
    promote: Literal["auto", "approval"] = "auto"
    schedule: dt.timedelta | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """Extra pipeline parameters."""
    cooldown: dt.timedelta = DEFAULT_RETRAIN_COOLDOWN
    """Alerts of one monitor start at most one retraining within it (the rest are kept
    as suppressed)."""

    @property
    def lower_is_better(self) -> bool:
        return self.metric in ("log_loss", "rmse", "mae")


def parse_actions(raw: Any, *, where: str) -> dict[str, ActionSpec]:
    """The `actions:` section; anything wrong is one `MonitorSpecError` line."""
    section = _mapping(raw, "actions", where)
    return {name: _action(str(name), body, where) for name, body in section.items()}


def parse_retraining(raw: Any, *, where: str) -> dict[str, RetrainingSpec]:
    """The `retraining:` section; anything wrong is one `MonitorSpecError` line."""
    section = _mapping(raw, "retraining", where)
    return {name: _retraining(str(name), body, where) for name, body in section.items()}


def _action(name: str, raw: Any, where: str) -> ActionSpec:
    what = f"action {name}"
    _check_name(name, what, where)
    body = _mapping(raw, what, where, keys=_ACTION_KEYS)
    kinds = [k for k in _ACTION_KINDS if k in body]
    if len(kinds) != 1:
        raise MonitorSpecError(f"{where}: {what} needs exactly one of "
                               f"{', '.join(_ACTION_KINDS)}",
                               hint="e.g. webhook: http://127.0.0.1:9000/hook")
    kind = kinds[0]
    value = body[kind]
    target: str | tuple[str, ...]
    if kind == "webhook":
        if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
            raise MonitorSpecError(f"{where}: {what}: webhook must be an http(s) URL")
        target = value
    elif kind == "command":
        argv = [value] if isinstance(value, str) else value
        if not isinstance(argv, list) or not argv or not all(
                isinstance(a, str) and a for a in argv):
            raise MonitorSpecError(f"{where}: {what}: command must be text or a list of "
                                   "arguments")
        target = tuple(argv)
    else:
        if value not in LOG_LEVELS:
            raise MonitorSpecError(f"{where}: {what}: log level must be one of "
                                   f"{', '.join(LOG_LEVELS)}")
        target = str(value)
    return ActionSpec(name=name, kind=kind, target=target,  # type: ignore[arg-type]
                      cooldown=_duration(body.get("cooldown", DEFAULT_COOLDOWN),
                                         f"{what}: cooldown", where),
                      timeout=_number(body.get("timeout", 10.0), f"{what}: timeout",
                                      where, low=0.001, high=3600.0))


def _retraining(name: str, raw: Any, where: str) -> RetrainingSpec:
    what = f"retraining {name}"
    _check_name(name, what, where)
    body = _mapping(raw, what, where, keys=_RETRAIN_KEYS)
    for required in ("pipeline", "model", "evaluation", "holdout"):
        if required not in body:
            raise MonitorSpecError(f"{where}: {what} has no `{required}`")
    evaluation = _mapping(body["evaluation"], f"{what}: evaluation", where,
                          keys=_EVALUATION_KEYS)
    for required in ("table", "label"):
        if not isinstance(evaluation.get(required), str):
            raise MonitorSpecError(f"{where}: {what}: evaluation needs `{required}` (text)")
    metric = body.get("metric", "auc")
    if metric not in METRICS:
        raise MonitorSpecError(f"{where}: {what}: unknown metric {metric!r}",
                               hint=f"one of {', '.join(METRICS)}")
    promote = body.get("promote", "auto")
    if promote not in ("auto", "approval"):
        raise MonitorSpecError(f"{where}: {what}: promote must be `auto` or `approval`")
    min_rows = body.get("min_rows", 100)
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise MonitorSpecError(f"{where}: {what}: min_rows must be a whole number ≥ 1")
    params = body.get("params", {})
    if not isinstance(params, Mapping):
        raise MonitorSpecError(f"{where}: {what}: params must be a mapping")
    deployment = body.get("deployment")
    for key in ("pipeline", "model"):
        if not isinstance(body[key], str) or not body[key]:
            raise MonitorSpecError(f"{where}: {what}: {key} must be text")
    if deployment is not None and not isinstance(deployment, str):
        raise MonitorSpecError(f"{where}: {what}: deployment must be text")
    schedule = body.get("schedule")
    return RetrainingSpec(
        name=name, pipeline=body["pipeline"], model=body["model"], deployment=deployment,
        evaluation=EvaluationSpec(table=evaluation["table"], label=evaluation["label"],
                                  timestamp=str(evaluation.get("timestamp", "event_time"))),
        holdout=_duration(body["holdout"], f"{what}: holdout", where),
        metric=metric, margin=_number(body.get("margin", 0.0), f"{what}: margin", where,
                                      low=0.0, high=1e9),
        min_rows=min_rows, promote=promote,
        schedule=None if schedule is None else _duration(schedule, f"{what}: schedule",
                                                         where),
        params=dict(params),
        cooldown=_duration(body.get("cooldown", DEFAULT_RETRAIN_COOLDOWN),
                           f"{what}: cooldown", where))


def _mapping(raw: Any, what: str, where: str,
             keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise MonitorSpecError(f"{where}: {what} must be a mapping")
    if keys is not None:
        unknown = sorted(str(k) for k in raw if k not in keys)
        if unknown:
            raise MonitorSpecError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                                   f"{', '.join(map(repr, unknown))} in {what}",
                                   hint=f"known: {', '.join(keys)}")
    return dict(raw)


def _check_name(name: str, what: str, where: str) -> None:
    if not _NAME.fullmatch(name):
        raise MonitorSpecError(f"{where}: {what}: not a name",
                               hint="a letter, then letters, digits, _ or - (at most 64)")


def _duration(value: Any, what: str, where: str) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        return value
    try:
        return parse_duration(value)
    except Exception as exc:  # the duration parser's own one line
        raise MonitorSpecError(f"{where}: {what}: {exc}") from None


def _number(value: Any, what: str, where: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or not low <= value <= high:
        raise MonitorSpecError(f"{where}: {what} must be a number in [{low:g}, {high:g}]")
    return float(value)
