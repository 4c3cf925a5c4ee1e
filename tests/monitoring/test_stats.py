"""The drift statistics agree with scipy to 1e-9 and with a hand computation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from flywheel.monitoring import stats

samples = st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
                   min_size=1, max_size=300)
tied_samples = st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=300)


def _sorted(values: list[float]) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=np.float64))


@settings(max_examples=200, deadline=None)
@given(st.one_of(samples, tied_samples), st.one_of(samples, tied_samples))
def test_ks_and_wasserstein_agree_with_scipy(a: list[float], b: list[float]) -> None:
    ref, cur = _sorted(a), _sorted(b)
    got = stats.ks_and_wasserstein(ref, cur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = sps.ks_2samp(ref, cur)
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert got.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    scale = max(1.0, float(np.max(np.abs(np.concatenate([ref, cur])))))
    assert got.wasserstein == pytest.approx(sps.wasserstein_distance(ref, cur),
                                            abs=1e-9 * scale)


def test_large_samples_use_scipys_asymptotic_p_value() -> None:
    rng = np.random.default_rng(7)
    ref = np.sort(rng.normal(size=20_000))
    cur = np.sort(rng.normal(0.02, size=15_000))
    got = stats.ks_and_wasserstein(ref, cur)
    expected = sps.ks_2samp(ref, cur, method="asymp")
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert got.wasserstein == pytest.approx(sps.wasserstein_distance(ref, cur), abs=1e-9)


def test_constant_equal_columns_do_not_drift() -> None:
    same = np.full(50, 3.0)
    got = stats.ks_and_wasserstein(same, same)
    assert (got.statistic, got.wasserstein) == (0.0, 0.0)
    assert got.p_value == pytest.approx(1.0)
    assert stats.ks_and_wasserstein(same, same, p_value=False).p_value is None


def test_constant_but_different_columns_are_fully_apart() -> None:
    got = stats.ks_and_wasserstein(np.full(40, 1.0), np.full(30, 4.0))
    assert got.statistic == 1.0 and got.wasserstein == pytest.approx(3.0)


counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_chi_squared_agrees_with_scipy_contingency(a: list[int], data: st.DataObject) -> None:
    b = data.draw(st.lists(st.integers(0, 1000), min_size=len(a), max_size=len(a)))
    ref, cur = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
    got = stats.chi_squared(ref, cur)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table.sum(axis=1).min() == 0:
        assert (got.statistic, got.p_value) == (0.0, 1.0)
        return
    expected = sps.chi2_contingency(table, correction=False)
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert got.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert got.dof == expected.dof


def test_a_category_on_one_side_only_is_counted() -> None:
    unseen_in_reference = stats.chi_squared(np.array([50, 50, 0]), np.array([40, 40, 20]))
    unseen_in_current = stats.chi_squared(np.array([40, 40, 20]), np.array([50, 50, 0]))
    assert unseen_in_reference.p_value < 1e-4 and unseen_in_current.p_value < 1e-4
    assert unseen_in_reference.dof == 2


def _hand_psi(r: list[int], c: list[int]) -> float:
    total_r, total_c = sum(r), sum(c)
    out = 0.0
    for x, y in zip(r, c, strict=True):
        p = max(x / total_r, stats.PSI_FLOOR)
        q = max(y / total_c, stats.PSI_FLOOR)
        out += (q - p) * math.log(q / p)
    return out


def _hand_js(r: list[int], c: list[int]) -> float:
    total_r, total_c = sum(r), sum(c)
    divergence = 0.0
    for x, y in zip(r, c, strict=True):
        p, q = x / total_r, y / total_c
        m = (p + q) / 2
        if p:
            divergence += p * math.log(p / m) / 2
        if q:
            divergence += q * math.log(q / m) / 2
    return math.sqrt(max(divergence, 0.0))


positive_counts = st.lists(st.integers(0, 500), min_size=1, max_size=12).filter(
    lambda xs: sum(xs) > 0)


@settings(max_examples=200, deadline=None)
@given(positive_counts, st.data())
def test_psi_and_jensen_shannon_match_a_hand_computation(a: list[int],
                                                         data: st.DataObject) -> None:
    b = data.draw(st.lists(st.integers(0, 500), min_size=len(a), max_size=len(a)).filter(
        lambda xs: sum(xs) > 0))
    ref, cur = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
    assert stats.psi(ref, cur) == pytest.approx(_hand_psi(a, b), abs=1e-9)
    js = stats.jensen_shannon(ref, cur)
    assert js == pytest.approx(_hand_js(a, b), abs=1e-9)
    assert 0.0 <= js <= math.sqrt(math.log(2)) + 1e-12



def test_jensen_shannon_agrees_with_scipy_spatial() -> None:
    from scipy.spatial import distance

    ref, cur = np.array([10, 0, 5, 7]), np.array([0, 3, 5, 9])
    assert stats.jensen_shannon(ref, cur) == pytest.approx(
        float(distance.jensenshannon(ref, cur)), abs=1e-9)


def test_disjoint_shares_give_the_largest_distances() -> None:
    ref, cur = np.array([10, 0]), np.array([0, 10])
    assert stats.jensen_shannon(ref, cur) == pytest.approx(math.sqrt(math.log(2)))
    assert stats.psi(ref, cur) == pytest.approx(2 * (1 - 1e-4) * math.log(1 / 1e-4))


@settings(max_examples=100, deadline=None)
@given(samples, samples)
def test_quantile_bins_count_every_value_once(a: list[float], b: list[float]) -> None:
    ref, cur = _sorted(a), _sorted(b)
    edges = stats.quantile_edges(ref)
    assert np.all(np.diff(edges) > 0) and len(edges) <= stats.QUANTILE_BINS - 1
    got = stats.bin_counts(cur, edges)
    assert got.sum() == len(cur)
    expected = np.bincount(np.searchsorted(edges, cur, side="left"),
                           minlength=len(edges) + 1)
    assert got.tolist() == expected.tolist()
