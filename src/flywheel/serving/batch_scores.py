"""A model's outputs over a chunk of rows, as columns: a classifier's label and probability
(of the positive class when there are two, else of the label), a regressor's value.

The columns are named `prediction_*` so that they never meet an input's own `label`
column (an entity table of a training set has one)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel.registry import LoadedModel
from flywheel.registry.flavors import predict

__all__ = ["LABEL", "MODEL_COLUMNS", "OUTPUT_COLUMNS", "PROBABILITY", "VALUE", "is_classifier",
           "model_inputs", "score"]

LABEL = "prediction_label"
PROBABILITY = "prediction_probability"
VALUE = "prediction_value"
OUTPUT_COLUMNS = (LABEL, PROBABILITY, VALUE)
MODEL_COLUMNS = ("model", "model_version")


def model_inputs(loaded: LoadedModel, available: list[str]) -> list[str]:
    """The columns the model reads, in its order: the names it was fitted on, else its
    feature service's features, else every column it is given."""
    signature = loaded.version.signature
    listed = signature.get("inputs") or signature.get("features")
    return list(listed) if listed else available


def is_classifier(model: Any) -> bool:
    return (callable(getattr(model, "predict_proba", None))
            and getattr(model, "classes_", None) is not None)


def score(loaded: LoadedModel, rows: pa.Table) -> dict[str, pa.Array]:
    """The model's outputs for every row of `rows` (which holds its input columns)."""
    columns = model_inputs(loaded, rows.column_names)
    missing = [c for c in columns if c not in rows.column_names]
    if missing:
        raise InputError(f"model {loaded.version.uri} reads column(s) {', '.join(missing)}, "
                         "which neither its feature service nor the input gives")
    model = loaded.model
    classifier = is_classifier(model)
    if rows.num_rows == 0:
        return _empty(model, classifier)
    data = rows.select(columns).to_pandas()
    labels = predict(model, loaded.version.flavor, data, columns)
    if not classifier:
        return {VALUE: _column(labels, pa.float64())}
    import numpy as np

    probabilities = np.asarray(model.predict_proba(data))
    if probabilities.shape[1] == 2:
        chosen = probabilities[:, 1]
    else:  # the probability of the label given (the model's own pick)
        index = {label: i for i, label in enumerate(np.asarray(model.classes_).tolist())}
        picked = np.fromiter((index[label] for label in np.asarray(labels).tolist()),
                             np.int64, len(labels))
        chosen = probabilities[np.arange(len(picked)), picked]
    return {LABEL: _column(labels, None), PROBABILITY: pa.array(chosen, pa.float64())}


def _column(values: Any, kind: pa.DataType | None) -> pa.Array:
    import numpy as np

    array = np.asarray(values)
    if array.ndim > 1 and array.shape[1] == 1:
        array = array[:, 0]
    return pa.array(array, kind) if kind is not None else pa.array(array)


def _empty(model: Any, classifier: bool) -> dict[str, pa.Array]:
    if not classifier:
        return {VALUE: pa.array([], pa.float64())}
    import numpy as np

    label_type = pa.from_numpy_dtype(np.asarray(model.classes_).dtype) \
        if np.asarray(model.classes_).dtype.kind in "biuf" else pa.string()
    return {LABEL: pa.array([], label_type), PROBABILITY: pa.array([], pa.float64())}
