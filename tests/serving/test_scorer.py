"""The serving fast path (`predict_matrix`): the same answers as `predict` on a frame."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
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
