"""The metrics a retraining policy compares models on, from labels and predictions.

`auc` and `log_loss` take the positive class's probability; `accuracy`, `precision` and
`recall` take predicted classes (positive: 1 / True); `rmse` and `mae` take values.
"""

from __future__ import annotations

from collections.abc import Sequence

from flywheel.monitoring import performance
from flywheel.monitoring.errors import MonitorSpecError

__all__ = ["score"]


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
    if metric in ("auc", "log_loss", "rmse", "mae"):
        # The same figures live monitoring computes: one implementation of each.
        return getattr(performance, metric)(y, p)  # type: ignore[no-any-return]
    if metric == "accuracy":
        return float(np.mean(y == p))
    if metric in ("precision", "recall"):
        hits = float(np.sum((p == 1) & (y == 1)))
        total = float(np.sum(p == 1) if metric == "precision" else np.sum(y == 1))
        return hits / total if total else None
    raise MonitorSpecError(f"unknown metric {metric!r}")

