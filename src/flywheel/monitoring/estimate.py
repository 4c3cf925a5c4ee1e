"""Performance estimated before outcomes arrive, from the classifier's own probabilities.

Confidence-based performance estimation (CBPE, as NannyML does it): if the probabilities
are calibrated, a prediction `p` is right with chance `max(p, 1 - p)` and each row is a
positive with chance `p`, so the expected confusion matrix, and every metric built on it,
follows from the probabilities alone. The estimate is as good as the calibration: it is
kept beside the realised value (rows with `estimated=True`) so the two can be compared
once the outcomes land.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from flywheel.monitoring.performance import Floats, Metric

__all__ = ["ESTIMATED", "expected_accuracy", "expected_auc", "expected_log_loss",
           "expected_precision", "expected_recall"]

_EPS = 1e-15


def expected_accuracy(p: Floats) -> float | None:
    return float(np.mean(np.maximum(p, 1 - p))) if len(p) else None


def expected_precision(p: Floats) -> float | None:
    """Expected true positives over predicted positives."""
    predicted = p > 0.5
    return float(np.mean(p[predicted])) if predicted.any() else None


def expected_recall(p: Floats) -> float | None:
    """Expected true positives over expected positives."""
    positives = float(p.sum())
    return float(p[p > 0.5].sum() / positives) if positives > 0 else None


def expected_log_loss(p: Floats) -> float | None:
    """The mean entropy: the log-loss expected when outcomes follow the probabilities."""
    if not len(p):
        return None
    q = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(q * np.log(q) + (1 - q) * np.log(1 - q)))


def expected_auc(p: Floats) -> float | None:
    """The ROC curve of expected rates: cutting at each distinct probability (highest
    first), expected true positives are the sum of `p` above the cut and expected false
    positives the sum of `1 - p`; the area under it, by trapezoids."""
    positives = float(p.sum())
    negatives = float(len(p) - positives)
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-p, kind="mergesort")
    ordered = p[order]
    last_of_tie = np.r_[ordered[1:] != ordered[:-1], True]
    tpr = np.r_[0.0, np.cumsum(ordered)[last_of_tie] / positives]
    fpr = np.r_[0.0, np.cumsum(1 - ordered)[last_of_tie] / negatives]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def _on_probabilities(estimate: Callable[[Floats], float | None]) -> Metric:
    def metric(_y: Floats, p: Floats) -> float | None:
        return estimate(p)
    return metric


ESTIMATED: Mapping[str, Metric] = {
    "auc": _on_probabilities(expected_auc),
    "log_loss": _on_probabilities(expected_log_loss),
    "accuracy": _on_probabilities(expected_accuracy),
    "precision": _on_probabilities(expected_precision),
    "recall": _on_probabilities(expected_recall),
}
"""The metrics CBPE estimates (calibration cannot be: it is what it assumes)."""
