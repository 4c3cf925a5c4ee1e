"""Two-sample drift statistics, computed from sorted samples and from category counts.

Numeric statistics take the two samples already sorted, finite and non-empty: one stable
merge of the two sorted runs gives both empirical distribution functions at every point,
so the Kolmogorov–Smirnov statistic and the Wasserstein distance are exact (the same as
scipy's) at the cost of one linear merge. PSI and Jensen–Shannon compare shares of bins;
for numeric columns the bins are cut at the reference's deciles (`quantile_edges`), so
their counts too come from the sorted samples by binary search.

scipy is imported only for the p-value distributions (and for the exact small-sample
Kolmogorov–Smirnov p-value, which scipy computes by recursion).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "KS_EXACT_MAX_ROWS",
    "PSI_FLOOR",
    "QUANTILE_BINS",
    "ChiSquared",
    "Counts",
    "Floats",
    "KolmogorovSmirnov",
    "bin_counts",
    "chi_squared",
    "jensen_shannon",
    "ks_and_wasserstein",
    "psi",
    "quantile_edges",
    "shares",
]

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

KS_EXACT_MAX_ROWS = 10_000
"""Up to this many rows on each side the KS p-value is scipy's exact one (as scipy's
`ks_2samp` chooses by default); above it, Smirnov's asymptotic distribution."""
QUANTILE_BINS = 10
"""Numeric PSI / Jensen–Shannon bins: the reference's deciles."""
PSI_FLOOR = 1e-4
"""An empty bin's share in PSI (whose logarithm is undefined at 0), as Evidently does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KolmogorovSmirnov:
    statistic: float
    p_value: float | None
    """None when not asked for (it costs scipy's import and, for small samples, more
    time than the statistic)."""
    wasserstein: float
    """The first Wasserstein (earth mover's) distance, not normed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChiSquared:
    statistic: float
    p_value: float
    dof: int


def ks_and_wasserstein(reference: Floats, current: Floats, *,
                       p_value: bool = True) -> KolmogorovSmirnov:
    """KS (two-sided) and Wasserstein-1 of two sorted, finite, non-empty samples."""
    n, m = len(reference), len(current)
    # Both runs are sorted: a stable argsort of their concatenation is a linear merge
    # (timsort finds the two runs), and it keeps reference values before equal current ones.
    joined = np.concatenate([reference, current])
    order = np.argsort(joined, kind="stable")
    merged = joined[order]
    del joined
    from_reference = np.cumsum(order < n, dtype=np.int64)
    del order
    seen = np.arange(1, n + m + 1, dtype=np.int64)
    # F_ref - F_cur after each merged point; only meaningful after the last of equal values,
    # which is where the gap to the next value is positive (and at the very end).
    gap = from_reference / n - (seen - from_reference) / m
    del seen, from_reference
    steps = np.diff(merged)
    wasserstein = float(np.sum(np.abs(gap[:-1]) * steps))
    ends = np.flatnonzero(steps > 0)
    statistic = max(float(np.max(np.abs(gap[ends]))) if len(ends) else 0.0, abs(gap[-1]))
    return KolmogorovSmirnov(statistic=statistic,
                             p_value=_ks_p_value(reference, current, statistic)
                             if p_value else None,
                             wasserstein=wasserstein)


def _ks_p_value(reference: Floats, current: Floats, statistic: float) -> float:
    from scipy import stats

    n, m = len(reference), len(current)
    if max(n, m) <= KS_EXACT_MAX_ROWS:
        # scipy warns when its exact recursion does not converge and falls back to the
        # asymptotic value itself; that value is the one wanted.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(reference, current).pvalue)
    # scipy's asymptotic two-sided branch, verbatim: kstwo at the effective sample size.
    large, small = max(n, m), min(n, m)
    effective = large * small / (large + small)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))


def quantile_edges(reference: Floats, bins: int = QUANTILE_BINS) -> Floats:
    """Inner bin edges at the reference's quantiles (duplicates removed): bin i holds
    values in (edge[i-1], edge[i]], the first from -inf and the last to +inf."""
    if len(reference) == 0:
        return np.empty(0)
    positions = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(positions)


def bin_counts(sorted_values: Floats, edges: Floats) -> Counts:
    """Counts of a sorted sample in the bins `edges` cut (len(edges) + 1 of them)."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate([[0], cuts, [len(sorted_values)]])).astype(np.int64)


def shares(counts: Counts) -> Floats:
    total = int(counts.sum())
    return counts / total if total else np.zeros(len(counts))


def psi(reference: Counts, current: Counts) -> float:
    """Population stability index Σ (c − r)·ln(c / r) over the bins' shares, an empty
    bin's share raised to `PSI_FLOOR`."""
    r = np.maximum(shares(reference), PSI_FLOOR)
    c = np.maximum(shares(current), PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(reference: Counts, current: Counts) -> float:
    """Jensen–Shannon distance (the square root of the divergence, natural logarithm):
    0 for equal shares, at most √ln 2 ≈ 0.833 for disjoint ones."""
    p, q = shares(reference), shares(current)
    middle = (p + q) / 2
    divergence = (_relative_entropy(p, middle) + _relative_entropy(q, middle)) / 2
    return math.sqrt(max(divergence, 0.0))


def _relative_entropy(p: Floats, q: Floats) -> float:
    present = p > 0  # 0·ln 0 = 0; q > 0 wherever p > 0, since q is a mean with p
    return float(np.sum(p[present] * np.log(p[present] / q[present])))


def chi_squared(reference: Counts, current: Counts) -> ChiSquared:
    """Pearson's χ² test of homogeneity on the 2 × k table of category counts (no
    continuity correction), so a category seen on one side only is counted, not an error."""
    from scipy import stats

    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    rows, columns = table.sum(axis=1), table.sum(axis=0)
    dof = table.shape[1] - 1
    if dof < 1 or rows.min() == 0:
        return ChiSquared(statistic=0.0, p_value=1.0, dof=max(dof, 0))
    expected = np.outer(rows, columns) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return ChiSquared(statistic=statistic, p_value=float(stats.chi2.sf(statistic, dof)),
                      dof=dof)
