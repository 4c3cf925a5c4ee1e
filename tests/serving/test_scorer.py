"""The serving fast path (`predict_matrix`): the same answers as `predict` on a frame."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression

from flywheel.registry.flavors import detect_flavor, predict_matrix

COLUMNS = [f"f{i}" for i in range(5)]


def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 5))
    return pd.DataFrame(x, columns=COLUMNS), (x[:, 0] + x[:, 1] > 0)


@pytest.mark.parametrize("model", [
    lgb.LGBMClassifier(n_estimators=20, verbose=-1), LogisticRegression()])
def test_probabilities_equal_predict_proba_on_a_frame(model: object) -> None:
    frame, label = data()
    model.fit(frame, label)  # type: ignore[attr-defined]
    flavor = detect_flavor(model)
    fast = predict_matrix(model, flavor, frame.to_numpy()[:7], COLUMNS, proba=True)
    expected = model.predict_proba(frame.iloc[:7])  # type: ignore[attr-defined]
    np.testing.assert_allclose(fast, expected, rtol=1e-9)


@pytest.mark.parametrize("model", [
    lgb.LGBMRegressor(n_estimators=20, verbose=-1), LinearRegression()])
def test_values_equal_predict_on_a_frame(model: object) -> None:
    frame, label = data()
    model.fit(frame, label * 2.0 + frame["f2"])  # type: ignore[attr-defined]
    fast = predict_matrix(model, detect_flavor(model), frame.to_numpy()[:7], COLUMNS)
    np.testing.assert_allclose(fast, model.predict(frame.iloc[:7]), rtol=1e-9)  # type: ignore[attr-defined]


def _fitted_boosters() -> dict[str, lgb.Booster]:
    frame, label = data()
    three = (frame["f0"] > 0.5).astype(int) + (frame["f1"] > 0).astype(int)
    return {"binary": lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(frame, label).booster_,
            "regression": lgb.LGBMRegressor(n_estimators=15, verbose=-1)
            .fit(frame, frame["f2"] * 3).booster_,
            "multiclass": lgb.LGBMClassifier(n_estimators=5, verbose=-1)
            .fit(frame, three).booster_,
            "early stopped": lgb.train({"objective": "binary", "verbose": -1},
                                       lgb.Dataset(frame, label), num_boost_round=40,
                                       # the opposite labels: worse from the second round
                                       valid_sets=[lgb.Dataset(frame, ~label)],
                                       callbacks=[lgb.early_stopping(3, verbose=False)],
                                       keep_training_booster=True)}


BOOSTERS = _fitted_boosters()


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(BOOSTERS)),
       rows=st.lists(st.lists(st.floats(allow_infinity=False, width=64) | st.just(np.nan),
                              min_size=5, max_size=5), min_size=1, max_size=40))
def test_a_booster_scores_exactly_as_its_own_predict(kind: str, rows: list[list[float]],
                                                     ) -> None:
    """The booster's serving call (LightGBM's C predict directly, for one output per row)
    gives the very numbers of `Booster.predict(num_threads=1)`, missing values included;
    an early-stopped model stops at its best iteration, as `predict` does."""
    booster = BOOSTERS[kind]
    matrix = np.array(rows, dtype=float)
    got = predict_matrix(booster, "lightgbm", matrix, COLUMNS)
    expected = booster.predict(matrix, num_threads=1)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_the_early_stopped_booster_stopped_early() -> None:
    booster = BOOSTERS["early stopped"]
    assert 0 < booster.best_iteration < booster.current_iteration()
