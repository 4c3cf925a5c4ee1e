"""Registering from a tracked run: the run must have finished; its model artifact is
named, or the one pickled artifact with `predict`; its feature service, metrics and
lineage come from what the run recorded."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from flywheel._core.errors import InputError
from flywheel._core.metadata.table_versions import TableVersions
from flywheel.features.store import FeatureStore
from flywheel.tracking import RunInfo, RunStore
from flywheel.tracking.training import model_metrics, training_data
from flywheel.transforms.lineage import LineageNode, lineage


@dataclass(frozen=True, slots=True)
class RunModel:
    """The model a run holds: the artifact's name, its sha256 and the object."""

    artifact: str
    sha256: str
    model: Any


def finished_run(runs: RunStore, run_id: str) -> RunInfo:
    """The run `run_id` (an id or a unique prefix); one that has not finished is refused:
    its artifacts and metrics are not final, or it never made a model."""
    run = runs.get(run_id)
    if run.status == "running":
        raise InputError(f"run {run.id} ({run.name}) is still running; a model registers "
                         "from a finished run",
                         hint=f"wait for it to end (`flywheel runs show {run.id[:8]}`)")
    if run.status != "finished":
        reason = run.tags.get("flywheel.error") or run.tags.get("flywheel.failure")
        why = f": {reason}" if reason else ""
        raise InputError(f"run {run.id} ({run.name}) {run.status}{why}; a model registers "
                         "from a finished run",
                         hint="see `flywheel runs list --status finished`")
    return run


def run_model(runs: RunStore, run: RunInfo, artifact: str | None) -> RunModel:
    """The run's artifact `artifact`, or, when None, its one pickled artifact that has a
    `predict` method (a pipeline run's model step)."""
    if artifact is not None:
        record = run.artifacts.get(artifact)
        if record is None:
            raise InputError(f"run {run.id} has no artifact '{artifact}'",
                             hint=_choices(runs, run))
        if record.kind != "pickle":
            raise InputError(f"artifact '{artifact}' of run {run.id} is {record.kind}, not a "
                             "pickled model", hint=_choices(runs, run))
        value = runs.load_artifact(run.id, artifact)
        if not callable(getattr(value, "predict", None)):
            raise InputError(f"artifact '{artifact}' of run {run.id} is a "
                             f"{type(value).__name__}, not a model (it has no predict "
                             "method)", hint=_choices(runs, run))
        return RunModel(artifact, record.sha256, value)
    found, broken = _models(runs, run)
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(m.artifact for m in found)
        raise InputError(f"run {run.id} has {len(found)} models ({names}): say which one",
                         hint="--artifact NAME (artifact=NAME in Python)")
    if broken:
        raise broken[0]
    known = ", ".join(sorted(run.artifacts)) or "none"
    raise InputError(f"run {run.id} has no model: no pickled artifact with a predict method "
                     f"(its artifacts: {known})",
                     hint="log one with run.log_artifact('model', model), or make a pipeline "
                     "step return the model")


def _models(runs: RunStore, run: RunInfo) -> tuple[list[RunModel], list[InputError]]:
    """Every pickled artifact that loads and has `predict`, and why others did not load."""
    found: list[RunModel] = []
    broken: list[InputError] = []
    for name, record in sorted(run.artifacts.items()):
        if record.kind != "pickle":
            continue
        try:
            value = runs.load_artifact(run.id, name)
        except InputError as exc:  # its code is gone: say so if nothing else is a model
            broken.append(InputError(f"artifact '{name}' of run {run.id} cannot be loaded: "
                                     f"{exc.message}", hint=exc.hint))
            continue
        if callable(getattr(value, "predict", None)):
            found.append(RunModel(name, record.sha256, value))
    return found, broken


def _choices(runs: RunStore, run: RunInfo) -> str:
    names = [m.artifact for m in _models(runs, run)[0]]
    if names:
        return f"its models: {', '.join(names)} (--artifact NAME, artifact=NAME in Python)"
    return f"it has no pickled model; its artifacts: {', '.join(sorted(run.artifacts)) or 'none'}"


def trained_on(run: RunInfo) -> str | None:
    """The feature service of the run's training data, when it recorded one."""
    recorded = training_data(run.tags)
    service = recorded.get("feature_service") if recorded else None
    return service if isinstance(service, str) and service else None


def check_service(given: str, columns: list[str], trained: str,
                  trained_columns: list[str] | None, inputs: list[str] | None) -> None:
    """A feature service other than the training data's must still serve every input the
    model reads that the training data's service served."""
    if trained_columns is None or not inputs:
        return  # the training service is gone, or the model does not name its inputs
    missing = [c for c in inputs if c in trained_columns and c not in columns]
    if missing:
        raise InputError(f"feature service '{given}' does not serve {', '.join(missing)}, "
                         f"which the model reads (it was trained on '{trained}')",
                         hint=f"leave the feature service out to use '{trained}', or give "
                         "one that serves them")


def metrics_of(run: RunInfo) -> dict[str, float]:
    """The run's latest metrics, without bookkeeping (step counts and durations)."""
    return model_metrics(run.metrics, run.tags)


def run_lineage(versions: TableVersions, run: RunInfo,
                artifact: str | None) -> dict[str, Any]:
    """The run, its training data (feature service, entity rows, window), and every table
    version it read traced down to log offsets."""
    recorded = training_data(run.tags)
    entities = recorded.get("entities") if recorded else None
    read = dict(run.inputs)
    if isinstance(entities, dict) and isinstance(entities.get("tables"), dict):
        # Entity tables are in the run's inputs; this keeps a tag-only record traced too.
        read = {**{str(k): int(v) for k, v in entities["tables"].items()}, **read}
    trees = {table: lineage(versions, table, version) for table, version in sorted(read.items())}
    offsets: dict[str, list[int]] = {}
    for tree in trees.values():
        _log_ranges(tree, offsets)
    about: dict[str, Any] = {"id": run.id, "name": run.name}
    if artifact is not None:
        about["artifact"] = artifact
    return {"run": about, "training_set": read, "log_offsets": offsets,
            "training_data": recorded, "entities": entities,
            "tables": {table: dataclasses.asdict(tree) for table, tree in trees.items()}}


def _log_ranges(node: LineageNode, offsets: dict[str, list[int]]) -> None:
    """Widen `offsets` ({log table: [first, last]}) by the log ranges under `node`."""
    if node.kind == "log" and node.upto is not None:
        first = 0 if node.after is None or node.after < 0 else node.after + 1
        if first <= node.upto:
            seen = offsets.setdefault(node.name, [first, node.upto])
            seen[0], seen[1] = min(seen[0], first), max(seen[1], node.upto)
    for child in node.inputs:
        _log_ranges(child, offsets)


def service_columns(features: FeatureStore, service: str) -> list[str]:
    """The columns a model of feature service `service` is given, in order."""
    services = features.registry.services
    if service not in services:
        known = ", ".join(sorted(services)) or "none"
        raise InputError(f"no feature service '{service}' (known: {known})",
                         hint="declare it in definitions.py")
    return list(features.registry.plan(service=service).shown)


def columns_or_none(features: FeatureStore, service: str) -> list[str] | None:
    """The service's columns, or None when it is no longer defined."""
    try:
        return service_columns(features, service)
    except InputError:
        return None
