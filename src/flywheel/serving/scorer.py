"""A loaded model version, ready to score float matrices in its input order.

Serving builds one numpy array per member and batch (no frame on the hot path) and turns
the model's answer into outputs: classifiers `{"label", "probability"}` (the positive
class's probability for a binary one, the predicted class's otherwise), regressors
`{"value"}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flywheel.registry import LoadedModel
from flywheel.registry.flavors import input_columns, predict_matrix
from flywheel.serving.errors import BadPredictRequestError

__all__ = ["Scorer", "class_outputs", "model_inputs"]


def model_inputs(loaded: LoadedModel) -> list[str] | None:
    """The columns a model reads, in its order: its signature's inputs, else its feature
    service's columns, else the names it was fitted with."""
    signature = loaded.version.signature
    for key in ("inputs", "features"):
        names = signature.get(key)
        if names:
            return [str(n) for n in names]
    return input_columns(loaded.model, loaded.version.flavor)


class Scorer:
    """One model version: what it reads, what it answers, and scoring a matrix."""

    def __init__(self, *, loaded: LoadedModel) -> None:
        self.loaded = loaded
        version = loaded.version
        self.name = version.name
        self.version = version.version
        self.flavor = version.flavor
        self.feature_service: str | None = version.signature.get("feature_service")
        columns = model_inputs(loaded)
        if not columns:
            raise BadPredictRequestError(
                f"model {version.uri} does not name its input columns",
                hint="register it with inputs=[...] or a feature_service")
        self.columns = columns
        model = loaded.model
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] | None = (
            [_plain(c) for c in classes] if classes is not None
            and callable(getattr(model, "predict_proba", None)) else None)
        self.outputs = ["label", "probability"] if self.classes is not None else ["value"]

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """Class probabilities (rows x classes) for a classifier, values for a regressor."""
        answer = predict_matrix(self.loaded.model, self.flavor, matrix, self.columns,
                                proba=self.is_classifier)
        return np.asarray(answer, dtype=float)

    def outputs_of(self, raw: np.ndarray) -> list[dict[str, Any]]:
        """`raw` (as `raw` returns it) as one outputs mapping per row."""
        if self.classes is None:
            return [{"value": float(v)} for v in raw.reshape(len(raw), -1)[:, 0]]
        return class_outputs(self.classes, raw)

    def score(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        return self.outputs_of(self.raw(matrix))


def class_outputs(classes: Sequence[Any], probabilities: np.ndarray) -> list[dict[str, Any]]:
    best = probabilities.argmax(axis=1)
    if len(classes) == 2:
        positive = probabilities[:, 1]
        return [{"label": classes[b], "probability": float(p)}
                for b, p in zip(best.tolist(), positive.tolist(), strict=True)]
    chosen = probabilities[np.arange(len(best)), best]
    return [{"label": classes[b], "probability": float(p)}
            for b, p in zip(best.tolist(), chosen.tolist(), strict=True)]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can carry."""
    return value.item() if hasattr(value, "item") else value
