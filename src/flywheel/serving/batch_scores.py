"""A model's outputs over a chunk of rows, as columns, the same outputs a deployment gives
(`Scorer`): a classifier's label and probability (of the positive class when there are
two, else of the label), a regressor's value.

The columns are named `prediction_*` so that they never meet an input's own `label`
column (an entity table of a training set has one)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel._core.errors import InputError
from flywheel.serving.scorer import Scorer

__all__ = ["LABEL", "MODEL_COLUMNS", "OUTPUT_COLUMNS", "PROBABILITY", "VALUE", "score"]

LABEL = "prediction_label"
PROBABILITY = "prediction_probability"
VALUE = "prediction_value"
OUTPUT_COLUMNS = (LABEL, PROBABILITY, VALUE)
MODEL_COLUMNS = ("model", "model_version")


def score(scorer: Scorer, rows: pa.Table) -> dict[str, pa.Array]:
    """The model's outputs for every row of `rows`, which holds its input columns."""
    matrix = _matrix(scorer, rows)
    if scorer.classes is None:
        values = scorer.raw(matrix) if rows.num_rows else np.empty(0)
        return {VALUE: pa.array(values.reshape(rows.num_rows, -1)[:, 0], pa.float64())}
    classes = pa.array(scorer.classes)
    if not rows.num_rows:
        return {LABEL: classes.slice(0, 0), PROBABILITY: pa.array([], pa.float64())}
    probabilities = scorer.raw(matrix)
    best = probabilities.argmax(axis=1)
    chosen = probabilities[:, 1] if len(scorer.classes) == 2 else \
        probabilities[np.arange(len(best)), best]
    return {LABEL: classes.take(pa.array(best)), PROBABILITY: pa.array(chosen, pa.float64())}


def _matrix(scorer: Scorer, rows: pa.Table) -> np.ndarray:
    """The model's columns, in its order, as one float array (null -> NaN)."""
    missing = [c for c in scorer.columns if c not in rows.column_names]
    if missing:
        raise InputError(f"model {scorer.loaded.version.uri} reads column(s) "
                         f"{', '.join(missing)}, which neither its feature service nor the "
                         "input gives")
    columns = []
    for name in scorer.columns:
        try:
            values = pc.cast(rows.column(name), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"column {name} ({rows.schema.field(name).type}) is not a "
                             "number the model can read") from None
        columns.append(values.to_numpy())
    if not columns:
        return np.empty((rows.num_rows, 0))
    return np.column_stack(columns)
