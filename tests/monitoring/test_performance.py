"""Realised metrics against scikit-learn's, and CBPE's estimates against realised values on
calibrated data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from flywheel.monitoring import estimate, performance

labels_and_probabilities = st.integers(2, 200).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5001, 0.7, 0.9, 1.0]) | st.floats(0, 1),
             min_size=n, max_size=n)))


def arrays(pair: tuple[list[int], list[float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(pair[0], dtype=np.float64), np.asarray(pair[1], dtype=np.float64)


@settings(max_examples=150, deadline=None)
@given(labels_and_probabilities)
def test_classification_metrics_agree_with_scikit_learn(pair: tuple[list[int], list[float]]
                                                        ) -> None:
    y, p = arrays(pair)
    predicted = (p > 0.5).astype(int)
    assert performance.accuracy(y, p) == pytest.approx(sk.accuracy_score(y, predicted))
    assert performance.log_loss(y, p) == pytest.approx(
        sk.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]), rel=1e-9, abs=1e-9)
    if len(set(pair[0])) == 2:
        assert performance.auc(y, p) == pytest.approx(sk.roc_auc_score(y, p))
    else:
        assert performance.auc(y, p) is None
    if predicted.any():
        assert performance.precision(y, p) == pytest.approx(
            sk.precision_score(y, predicted, zero_division=0))
    if y.any():
        assert performance.recall(y, p) == pytest.approx(sk.recall_score(y, predicted))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1,
                max_size=100))
def test_regression_metrics_agree_with_scikit_learn(rows: list[tuple[float, float]]) -> None:
    y = np.asarray([r[0] for r in rows])
    p = np.asarray([r[1] for r in rows])
    assert performance.mae(y, p) == pytest.approx(sk.mean_absolute_error(y, p))
    assert performance.rmse(y, p) == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)))


def test_calibration_error_is_small_when_calibrated_and_large_when_not() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(size=50_000)
    y = (rng.uniform(size=p.size) < p).astype(np.float64)
    calibrated = performance.calibration_error(y, p)
    assert calibrated is not None and calibrated < 0.01
    overconfident = performance.calibration_error(y, np.clip(p * 1.6 - 0.3, 0, 1))
    assert overconfident is not None and overconfident > 0.05


def test_metrics_of_nothing_are_none() -> None:
    empty = np.asarray([], dtype=np.float64)
    for metric in (*performance.CLASSIFICATION.values(), *performance.REGRESSION.values()):
        assert metric(empty, empty) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cbpe_estimates_land_near_the_realised_values_on_calibrated_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 0.9, size=20_000)     # a skewed but calibrated classifier
    y = (rng.uniform(size=p.size) < p).astype(np.float64)
    for name, estimated in estimate.ESTIMATED.items():
        realised = performance.CLASSIFICATION[name](y, p)
        guess = estimated(y * np.nan, p)      # the estimate never looks at outcomes
        assert realised is not None and guess is not None
        assert guess == pytest.approx(realised, abs=0.02), name


def test_cbpe_is_fooled_by_miscalibration_as_it_should_be() -> None:
    rng = np.random.default_rng(11)
    truth = rng.uniform(size=20_000)
    y = (rng.uniform(size=truth.size) < truth).astype(np.float64)
    overconfident = np.where(truth > 0.5, 0.99, 0.01)
    guess = estimate.expected_accuracy(overconfident)
    realised = performance.accuracy(y, overconfident)
    assert guess is not None and realised is not None and guess - realised > 0.15
