"""`monitors.yaml` (or `monitors.py`): what to watch, over which windows, against what.

```yaml
defaults: {schedule: 10m, window: 1d}
monitors:
  sessions_quality:
    kind: quality                 # quality | drift | performance
    target: {table: sessions}     # or {deployment: purchase} or {feature_view: activity}
    window: 1h
    rules:
      - {column: user_id, not_null: true}
      - {freshness: 2h}
    actions: [note]
actions: {...}                    # see flywheel.monitoring.policy
retraining: {...}
```

Parsing checks the shape (keys, kinds, durations, thresholds); `check_targets` checks the
names against the project (tables, deployments, feature views, columns). Both fail with one
`MonitorSpecError` line naming the file and the monitor.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.policy import (
    ActionSpec,
    RetrainingSpec,
    _check_name,
    _duration,
    _mapping,
    parse_actions,
    parse_retraining,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_WINDOW",
    "KINDS",
    "MONITORS_FILE",
    "MONITORS_MODULE",
    "REGRESSION_METRICS",
    "STATISTICS",
    "Bound",
    "ColumnTestSpec",
    "MonitorSpec",
    "MonitorsFile",
    "ProjectNames",
    "Rule",
    "Target",
    "check_actions",
    "check_targets",
    "load_monitors",
    "parse_monitors",
]

MONITORS_FILE = "monitors.yaml"
MONITORS_MODULE = "monitors.py"
KINDS = ("quality", "drift", "performance")
STATISTICS = ("psi", "ks", "chi2", "jensen_shannon", "wasserstein")
CLASSIFICATION_METRICS = ("auc", "log_loss", "accuracy", "precision", "recall",
                          "calibration")
REGRESSION_METRICS = ("rmse", "mae")
DEFAULT_WINDOW = dt.timedelta(days=1)
_TOP_KEYS = ("monitors", "actions", "retraining", "defaults")
_DEFAULT_KEYS = ("schedule", "window", "min_rows")
_COMMON = ("kind", "target", "window", "schedule", "actions", "min_rows", "timestamp",
           "description")
_KEYS = {
    "quality": (*_COMMON, "rules"),
    "drift": (*_COMMON, "reference", "columns", "tests", "share"),
    "performance": (*_COMMON, "task", "label_delay", "metrics", "estimate"),
}
_TARGETS = ("table", "deployment", "feature_view")
_RULES = ("not_null", "null_share", "range", "accepted", "freshness", "volume", "schema")
_VOLUME_KEYS = ("min_ratio", "max_ratio", "baseline")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    kind: Literal["table", "deployment", "feature_view"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnTestSpec:
    """A drift test chosen for one column (`tests:`)."""

    statistic: str
    threshold: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Bound:
    """A metric's acceptable range: red below `min` or above `max`."""

    min: float | None = None
    max: float | None = None

    def broken_by(self, value: float) -> bool:
        return (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max)

    @property
    def threshold(self) -> float | None:
        return self.min if self.min is not None else self.max


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One quality rule; `kind` says which of the fields apply."""

    kind: Literal["null_share", "range", "accepted", "freshness", "volume", "schema"]
    column: str | None = None
    max_share: float = 0.0
    """`null_share` (0 for `not_null: true`)."""
    low: float | None = None
    high: float | None = None
    accepted: tuple[str, ...] = ()
    max_age: dt.timedelta | None = None
    min_ratio: float = 0.0
    max_ratio: float = math.inf
    baseline: int = 7

    @property
    def subject(self) -> str:
        return self.column if self.column is not None else self.kind


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorSpec:
    name: str
    kind: Literal["quality", "drift", "performance"]
    target: Target
    window: dt.timedelta = DEFAULT_WINDOW
    schedule: dt.timedelta | None = None
    actions: tuple[str, ...] = ()
    min_rows: int = 1
    timestamp: str | None = None
    """The event-time column of a table (default: `event_time`, or the view's)."""
    rules: tuple[Rule, ...] = ()
    reference: Literal["champion"] | tuple[dt.datetime, dt.datetime] = "champion"
    columns: tuple[str, ...] | None = None
    tests: Mapping[str, ColumnTestSpec] = field(default_factory=dict)
    share: float = 0.5
    task: Literal["classification", "regression"] | None = None
    label_delay: dt.timedelta = dt.timedelta(0)
    metrics: Mapping[str, Bound] = field(default_factory=dict)
    estimate: bool = False
    source: str = MONITORS_FILE

    @property
    def table(self) -> str:
        """The derived table this monitor's results are kept in."""
        return f"monitor_{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorsFile:
    monitors: dict[str, MonitorSpec] = field(default_factory=dict)
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    retraining: dict[str, RetrainingSpec] = field(default_factory=dict)
    source: str | None = None
    """The file read (None: the project has no monitors)."""


def load_monitors(project_root: Path) -> MonitorsFile:
    """The project's `monitors.yaml`, else `monitors.py` (a `MONITORS` dict, and optionally
    `ACTIONS`, `RETRAINING`, `DEFAULTS`, in the YAML's shape); none: no monitors."""
    yaml_path = project_root / MONITORS_FILE
    if yaml_path.is_file():
        return parse_monitors(_read_yaml(yaml_path), where=MONITORS_FILE)
    module_path = project_root / MONITORS_MODULE
    if module_path.is_file():
        return parse_monitors(_read_module(module_path), where=MONITORS_MODULE)
    return MonitorsFile()


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f" (line {mark.line + 1})" if mark is not None else ""
        raise MonitorSpecError(f"{path.name}: not valid YAML{place}") from None


def _read_module(path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("flywheel_project_monitors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise MonitorSpecError(f"{path.name}: raised {type(exc).__name__}: {exc}") from None
    if not isinstance(getattr(module, "MONITORS", None), Mapping):
        raise MonitorSpecError(f"{path.name}: defines no MONITORS mapping",
                               hint="MONITORS = {'name': {'kind': 'quality', ...}}")
    return {key.lower(): getattr(module, key) for key in
            ("MONITORS", "ACTIONS", "RETRAINING", "DEFAULTS") if hasattr(module, key)}


def parse_monitors(raw: Any, *, where: str = MONITORS_FILE) -> MonitorsFile:
    """The whole file; anything wrong is one `MonitorSpecError` line."""
    top = _mapping(raw, "the file", where, keys=_TOP_KEYS)
    defaults = _mapping(top.get("defaults"), "defaults", where, keys=_DEFAULT_KEYS)
    monitors = _mapping(top.get("monitors"), "monitors", where)
    parsed = {str(name): _Monitor(str(name), where, defaults).parse(body)
              for name, body in monitors.items()}
    return MonitorsFile(monitors=parsed,
                        actions=parse_actions(top.get("actions"), where=where),
                        retraining=parse_retraining(top.get("retraining"), where=where),
                        source=where)


class _Monitor:
    """Parses one monitor's body, failing with lines that name it."""

    def __init__(self, name: str, where: str, defaults: Mapping[str, Any]) -> None:
        self.name = name
        self.where = where
        self.defaults = defaults

    def fail(self, problem: str, hint: str | None = None) -> MonitorSpecError:
        return MonitorSpecError(f"{self.where}: monitor {self.name}: {problem}", hint=hint)

    def parse(self, raw: Any) -> MonitorSpec:
        _check_name(self.name, f"monitor {self.name}", self.where)
        if not isinstance(raw, Mapping):
            raise self.fail("must be a mapping")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise self.fail(f"unknown kind {kind!r}" if kind is not None else "has no kind",
                            hint=f"one of {', '.join(KINDS)}")
        body = _mapping(raw, f"monitor {self.name}", self.where, keys=_KEYS[kind])
        settings = {**self.defaults, **body}
        common: dict[str, Any] = {
            "name": self.name, "kind": kind, "target": self.target(body.get("target")),
            "window": self.duration(settings.get("window", DEFAULT_WINDOW), "window"),
            "schedule": None if settings.get("schedule") is None else self.duration(
                settings["schedule"], "schedule"),
            "actions": self.names(body.get("actions", []), "actions"),
            "min_rows": self.whole(settings.get("min_rows", 1), "min_rows"),
            "timestamp": self.optional_text(body.get("timestamp"), "timestamp"),
            "source": self.where,
        }
        if kind == "quality":
            return MonitorSpec(**common, rules=self.rules(body.get("rules")))
        if kind == "drift":
            return MonitorSpec(**common, **self.drift(body, common["target"]))
        return MonitorSpec(**common, **self.performance(body, common["target"]))

    # Pieces ------------------------------------------------------------------------
    def target(self, raw: Any) -> Target:
        if not isinstance(raw, Mapping) or len(raw) != 1:
            raise self.fail("target must name one of " + ", ".join(_TARGETS),
                            hint="e.g. target: {table: sessions}")
        ((kind, name),) = raw.items()
        if kind not in _TARGETS:
            raise self.fail(f"unknown target {kind!r}", hint=f"one of {', '.join(_TARGETS)}")
        return Target(kind=kind, name=self.text(name, f"target {kind}"))

    def drift(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        tests = _mapping(body.get("tests"), "tests", self.where)
        return {
            "reference": self.reference(body.get("reference", "champion"), target),
            "columns": None if body.get("columns") is None else self.names(
                body["columns"], "columns"),
            "tests": {str(column): self.column_test(str(column), test)
                      for column, test in tests.items()},
            "share": self.number(body.get("share", 0.5), "share", 0.0, 1.0),
        }

    def reference(self, raw: Any, target: Target) -> Any:
        if raw == "champion":
            if target.kind != "deployment":
                raise self.fail("reference: champion needs a deployment target",
                                hint="give a window: reference: {start: ..., end: ...}")
            return "champion"
        body = _mapping(raw, f"monitor {self.name}: reference", self.where,
                        keys=("start", "end"))
        if set(body) != {"start", "end"}:
            raise self.fail("reference is `champion` or {start: TIME, end: TIME}")
        start, end = self.time(body["start"], "reference start"), self.time(
            body["end"], "reference end")
        if end <= start:
            raise self.fail("reference end must come after its start")
        return (start, end)

    def column_test(self, column: str, raw: Any) -> ColumnTestSpec:
        body = _mapping(raw, f"monitor {self.name}: tests {column}", self.where,
                        keys=("statistic", "threshold"))
        statistic = body.get("statistic")
        if statistic not in STATISTICS:
            raise self.fail(f"tests {column}: unknown statistic {statistic!r}",
                            hint=f"one of {', '.join(STATISTICS)}")
        if "threshold" not in body:
            raise self.fail(f"tests {column}: needs a threshold")
        return ColumnTestSpec(statistic=statistic, threshold=self.number(
            body["threshold"], f"tests {column}: threshold", 0.0, 1e9))

    def performance(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        if target.kind != "deployment":
            raise self.fail("a performance monitor watches a deployment",
                            hint="target: {deployment: NAME}")
        task = body.get("task")
        if task not in (None, "classification", "regression"):
            raise self.fail(f"unknown task {task!r}", hint="classification or regression")
        metrics = _mapping(body.get("metrics"), "metrics", self.where)
        known = (CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
                 if task == "regression" else CLASSIFICATION_METRICS + REGRESSION_METRICS)
        bounds = {}
        for metric, bound in metrics.items():
            if metric not in known:
                raise self.fail(f"unknown metric {metric!r}" + (f" for {task}" if task else ""),
                                hint=f"one of {', '.join(known)}")
            bounds[str(metric)] = self.bound(str(metric), bound)
        if task is None and bounds:  # the metrics say which task they belong to
            task = "regression" if set(bounds) <= set(REGRESSION_METRICS) else (
                "classification" if not set(bounds) & set(REGRESSION_METRICS) else None)
            if task is None:
                raise self.fail("metrics mix classification and regression")
        estimate = body.get("estimate", False)
        if not isinstance(estimate, bool):
            raise self.fail("estimate must be true or false")
        if estimate and task == "regression":
            raise self.fail("estimate (CBPE) needs a classifier's probabilities")
        return {"task": task, "metrics": bounds, "estimate": estimate,
                "label_delay": self.duration(body.get("label_delay", 0), "label_delay",
                                             allow_zero=True)}

    def bound(self, metric: str, raw: Any) -> Bound:
        body = _mapping(raw, f"monitor {self.name}: metrics {metric}", self.where,
                        keys=("min", "max"))
        if not body:
            raise self.fail(f"metrics {metric}: needs min or max")
        low, high = (None if body.get(k) is None else self.number(
            body[k], f"metrics {metric}: {k}", -1e12, 1e12) for k in ("min", "max"))
        if low is not None and high is not None and low > high:
            raise self.fail(f"metrics {metric}: min is above max")
        return Bound(min=low, max=high)

    def rules(self, raw: Any) -> tuple[Rule, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("a quality monitor needs a list of rules",
                            hint="rules: [{column: user_id, not_null: true}]")
        return tuple(self.rule(i, item) for i, item in enumerate(raw, 1))

    def rule(self, index: int, raw: Any) -> Rule:
        what = f"rule {index}"
        body = _mapping(raw, f"monitor {self.name}: {what}", self.where,
                        keys=("column", *_RULES))
        kinds = [k for k in _RULES if k in body]
        if len(kinds) != 1:
            raise self.fail(f"{what} needs exactly one of {', '.join(_RULES)}")
        kind, value = kinds[0], body[kinds[0]]
        column = None if body.get("column") is None else self.text(body["column"],
                                                                   f"{what}: column")
        if kind in ("not_null", "null_share", "range", "accepted") and column is None:
            raise self.fail(f"{what}: {kind} needs a column")
        if kind in ("freshness", "volume", "schema") and column is not None:
            raise self.fail(f"{what}: {kind} is about the whole table, not a column")
        if kind == "not_null":
            if value is not True:
                raise self.fail(f"{what}: not_null must be true (or use null_share)")
            return Rule(kind="null_share", column=column, max_share=0.0)
        if kind == "null_share":
            return Rule(kind="null_share", column=column,
                        max_share=self.number(value, f"{what}: null_share", 0.0, 1.0))
        if kind == "range":
            if not isinstance(value, list) or len(value) != 2:
                raise self.fail(f"{what}: range is [low, high] (null for open)")
            low, high = (None if v is None else self.number(v, f"{what}: range", -1e300,
                                                            1e300) for v in value)
            if low is not None and high is not None and low > high:
                raise self.fail(f"{what}: range low is above high")
            return Rule(kind="range", column=column, low=low, high=high)
        if kind == "accepted":
            if not isinstance(value, list) or not value:
                raise self.fail(f"{what}: accepted is a list of values")
            return Rule(kind="accepted", column=column, accepted=tuple(map(str, value)))
        if kind == "freshness":
            return Rule(kind="freshness", max_age=self.duration(value, f"{what}: freshness"))
        if kind == "volume":
            volume = _mapping(value, f"monitor {self.name}: {what}: volume", self.where,
                              keys=_VOLUME_KEYS)
            low = self.number(volume.get("min_ratio", 0.0), f"{what}: min_ratio", 0.0, 1e9)
            high = self.number(volume.get("max_ratio", 1e9), f"{what}: max_ratio", 0.0, 1e9)
            if low > high:
                raise self.fail(f"{what}: min_ratio is above max_ratio")
            return Rule(kind="volume", min_ratio=low, max_ratio=high,
                        baseline=self.whole(volume.get("baseline", 7), f"{what}: baseline"))
        if value != "unchanged":
            raise self.fail(f"{what}: schema: unchanged is the one schema rule")
        return Rule(kind="schema")

    # Values ------------------------------------------------------------------------
    def duration(self, value: Any, what: str, *, allow_zero: bool = False) -> dt.timedelta:
        if allow_zero and value == 0 and not isinstance(value, bool):
            return dt.timedelta(0)
        return _duration(value, f"monitor {self.name}: {what}", self.where)

    def number(self, value: Any, what: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and low <= value <= high):
            raise self.fail(f"{what} must be a number in [{low:g}, {high:g}]")
        return float(value)

    def whole(self, value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"{what} must be a whole number ≥ 1")
        return value

    def text(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{what} must be text")
        return value

    def optional_text(self, value: Any, what: str) -> str | None:
        return None if value is None else self.text(value, what)

    def names(self, value: Any, what: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
            raise self.fail(f"{what} must be a list of names")
        return tuple(items)

    def time(self, value: Any, what: str) -> dt.datetime:
        if isinstance(value, dt.datetime):
            found = value
        else:
            try:
                found = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise self.fail(f"{what}: {value!r} is not an ISO time") from None
        return found if found.tzinfo is not None else found.replace(tzinfo=dt.UTC)


def check_actions(file: MonitorsFile) -> None:
    """Each monitor's actions name an action or a retraining policy."""
    known = set(file.actions) | set(file.retraining)
    for spec in file.monitors.values():
        for action in spec.actions:
            if action not in known:
                raise MonitorSpecError(
                    f"{spec.source}: monitor {spec.name}: action {action!r} is neither an "
                    "action nor a retraining policy",
                    hint="known: " + (", ".join(sorted(known)) or "none; add `actions:`"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectNames:
    """What monitors may name, as the project has it (columns: None until built)."""

    tables: Mapping[str, Sequence[str] | None]
    views: Mapping[str, Sequence[str]]
    deployments: Mapping[str, Sequence[str] | None]


def check_targets(file: MonitorsFile, names: ProjectNames) -> None:
    """Every target and column a monitor names exists in the project."""
    check_actions(file)
    for spec in file.monitors.values():
        columns = _target_columns(spec, names)
        if spec.table in names.tables:
            raise MonitorSpecError(f"{spec.source}: monitor {spec.name}: its results table "
                                   f"{spec.table} clashes with a transform of that name")
        if columns is None:
            continue
        named = [*(r.column for r in spec.rules if r.column is not None),
                 *(spec.columns or ()), *spec.tests]
        if spec.timestamp is not None and spec.target.kind == "table":
            named.append(spec.timestamp)
        for column in named:
            if column not in columns:
                raise MonitorSpecError(
                    f"{spec.source}: monitor {spec.name}: {spec.target} has no column "
                    f"{column!r}", hint="it has: " + ", ".join(sorted(columns)))


def _target_columns(spec: MonitorSpec, names: ProjectNames) -> Sequence[str] | None:
    kind, name = spec.target.kind, spec.target.name
    known: Mapping[str, Sequence[str] | None] = (
        names.tables if kind == "table" else names.views if kind == "feature_view"
        else names.deployments)
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise MonitorSpecError(f"{spec.source}: monitor {spec.name}: no "
                               f"{kind.replace('_', ' ')} {name!r}", hint=f"known: {listed}")
    return known[name]
