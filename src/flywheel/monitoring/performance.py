"""Realised performance from outcomes: the metrics of a binary classifier and a regressor.

Written with numpy (scikit-learn is an optional extra), and tested against scikit-learn's
own. A classifier is judged on the positive class's probability `p` (what serving logs as
`outputs.probability` for a binary model) and outcomes read as 1 when ≥ 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

__all__ = [
    "CALIBRATION_BINS",
    "CLASSIFICATION",
    "REGRESSION",
    "Floats",
    "Metric",
    "accuracy",
    "auc",
    "calibration_error",
    "log_loss",
    "mae",
    "precision",
    "recall",
    "rmse",
]

Floats = npt.NDArray[np.float64]
CALIBRATION_BINS = 10
_EPS = 1e-15


def auc(y: Floats, p: Floats) -> float | None:
    """Area under the ROC curve: the chance a positive outranks a negative (ties count
    half), from average ranks; None when one class is absent."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    ranks = _average_ranks(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def log_loss(y: Floats, p: Floats) -> float | None:
    if not len(y):
        return None
    q = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def accuracy(y: Floats, p: Floats) -> float | None:
    return float(np.mean((p > 0.5) == (y == 1))) if len(y) else None


def precision(y: Floats, p: Floats) -> float | None:
    predicted = p > 0.5
    return float(np.mean(y[predicted] == 1)) if predicted.any() else None


def recall(y: Floats, p: Floats) -> float | None:
    actual = y == 1
    return float(np.mean(p[actual] > 0.5)) if actual.any() else None


def calibration_error(y: Floats, p: Floats, bins: int = CALIBRATION_BINS) -> float | None:
    """Expected calibration error: over equal-width probability bins, the gap between the
    mean probability and the share of positives, weighted by the bin's rows."""
    if not len(y):
        return None
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    gaps = np.abs(np.bincount(index, weights=p, minlength=bins)
                  - np.bincount(index, weights=y, minlength=bins))
    return float(gaps.sum() / counts.sum())


def rmse(y: Floats, p: Floats) -> float | None:
    return float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else None


def mae(y: Floats, p: Floats) -> float | None:
    return float(np.mean(np.abs(y - p))) if len(y) else None


def _average_ranks(values: Floats) -> Floats:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


Metric = Callable[[Floats, Floats], "float | None"]
CLASSIFICATION: Mapping[str, Metric] = {
    "auc": auc, "log_loss": log_loss, "accuracy": accuracy, "precision": precision,
    "recall": recall, "calibration": calibration_error,
}
REGRESSION: Mapping[str, Metric] = {"rmse": rmse, "mae": mae}
