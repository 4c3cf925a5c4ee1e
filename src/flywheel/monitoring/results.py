"""One row of a monitor's results: a statistic of one subject over one window.

Each monitor keeps its results as rows of its own derived table; every evaluation adds the
windows it completed. The columns are the fields of `MonitorResult`, in this order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

__all__ = ["STATUSES", "MonitorResult", "Status"]

Status = Literal["ok", "red", "unknown"]
STATUSES: tuple[Status, ...] = ("ok", "red", "unknown")
"""`unknown`: the window had too few rows (or no labels yet) to decide."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorResult:
    monitor: str
    kind: str
    """`quality`, `drift` or `performance`."""
    window_start: dt.datetime
    window_end: dt.datetime
    """Event time, UTC; the window is [start, end)."""
    subject: str
    """What was measured: a column, a rule (`freshness`, `volume`), a metric (`auc`), or
    `dataset` for a drift monitor's share of drifted columns."""
    statistic: str
    """How: `psi`, `ks`, `wasserstein`, `null_share`, `auc`, ..."""
    value: float | None
    threshold: float | None
    status: Status
    rows: int
    """Rows the value was computed from (in the current window)."""
    member: str | None = None
    model_version: int | None = None
    estimated: bool = False
    """True for a performance estimated before labels arrived (CBPE)."""
    detail: str = ""

    @property
    def red(self) -> bool:
        return self.status == "red"
