"""The drift reference of a model version: the training set its run recorded, its input
columns, and the version's own predictions on it (the serving path's scorer), read once per
version and kept for the rest of the evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from flywheel._core.errors import FlywheelError
from flywheel.monitoring.drift_windows import PREDICTION_COLUMN, Reference, ReferenceLoader
from flywheel.pipelines.spec import TRAINING_SET
from flywheel.registry import ModelRegistry
from flywheel.serving.scorer import Scorer
from flywheel.tracking import RunStore

__all__ = ["training_reference"]


def training_reference(*, registry: ModelRegistry, runs: RunStore) -> ReferenceLoader:
    cache: dict[tuple[str, int], Reference] = {}

    def load(model: str, version: int) -> Reference:
        key = (model, version)
        if key not in cache:
            cache[key] = _load(registry, runs, model, version)
        return cache[key]

    return load


def _load(registry: ModelRegistry, runs: RunStore, model: str, version: int) -> Reference:
    uri = f"{model}/{version}"
    try:
        found = registry.get(uri)
        if found.run_id is None:
            return Reference(rows=None, why_missing=f"{uri} was registered without a run, so "
                             "no training set is known")
        frame = _training_set(runs, found.run_id)
        if frame is None:
            return Reference(rows=None, why_missing=f"the run of {uri} recorded no "
                             f"{TRAINING_SET}")
        scorer = Scorer(loaded=registry.load(uri))
    except FlywheelError as exc:
        return Reference(rows=None, why_missing=f"{uri}: {exc.one_line()}")
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(
        frame, preserve_index=False)
    missing = [c for c in scorer.columns if c not in table.column_names]
    if missing:
        return Reference(rows=None, why_missing=f"the training set of {uri} has no column "
                         f"{missing[0]}")
    rows = table.select(scorer.columns)
    return Reference(rows=rows.append_column(PREDICTION_COLUMN, _predictions(scorer, rows)))


def _training_set(runs: RunStore, run_id: str) -> Any:
    """The training set of the run, or of the run it is a step of."""
    info = runs.get(run_id)
    for candidate in (info.id, info.parent_id):
        if candidate is None:
            continue
        if TRAINING_SET in runs.get(candidate).artifacts:
            return runs.load_artifact(candidate, TRAINING_SET)
    return None


def _predictions(scorer: Scorer, rows: pa.Table) -> pa.Array:
    usable = rows.drop_null()
    if not usable.num_rows:
        return pa.nulls(rows.num_rows, pa.float64())
    matrix = np.column_stack([rows[c].to_numpy(zero_copy_only=False).astype(float)
                              for c in scorer.columns])
    complete = ~np.isnan(matrix).any(axis=1)
    values = np.full(rows.num_rows, np.nan)
    outputs = scorer.outputs_of(scorer.raw(matrix[complete]))
    key = "probability" if scorer.is_classifier else "value"
    values[complete] = [o[key] for o in outputs]
    return pa.array(values, pa.float64(), mask=np.isnan(values))
