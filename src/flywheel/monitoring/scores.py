"""The metrics a retraining policy compares models on, from labels and predictions.

`auc` and `log_loss` take the positive class's probability; `accuracy`, `precision` and
`recall` take predicted classes (positive: 1 / True); `rmse` and `mae` take values.
"""

from __future__ import annotations

from collections.abc import Sequence

from flywheel.monitoring.errors import MonitorSpecError

__all__ = ["score"]

_EPSILON = 1e-15


def score(metric: str, labels: Sequence[float], predictions: Sequence[float]) -> float | None:
    """`metric` of `predictions` against `labels`; None where it is undefined (an AUC of a
    single class, a precision without a positive prediction)."""
    import numpy as np

    y = np.asarray(labels, dtype=float)
    p = np.asarray(predictions, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    if not len(y):
        return None
    if metric == "auc":
        return _auc(y, p)
    if metric == "log_loss":
        clipped = np.clip(p, _EPSILON, 1 - _EPSILON)
        return float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
    if metric == "accuracy":
        return float(np.mean(y == p))
    if metric in ("precision", "recall"):
        hits = float(np.sum((p == 1) & (y == 1)))
        total = float(np.sum(p == 1) if metric == "precision" else np.sum(y == 1))
        return hits / total if total else None
    if metric == "rmse":
        return float(np.sqrt(np.mean((y - p) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(y - p)))
    raise MonitorSpecError(f"unknown metric {metric!r}")


def _auc(y: object, p: object) -> float | None:
    """The Mann-Whitney form: the chance that a positive outranks a negative, ties half."""
    import numpy as np

    labels, scores = np.asarray(y), np.asarray(p)
    positives = int(np.sum(labels == 1))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties: each run of equal scores gets the mean of its positions.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start:start + count]] = start + (count + 1) / 2
    rank_sum = float(np.sum(ranks[labels == 1]))
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
