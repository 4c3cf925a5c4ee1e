"""The metrics retraining compares on, against scikit-learn's, for any labels and scores;
and the `since` parser of the alert history."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics

from flywheel._core.errors import InputError
from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.history import parse_since
from flywheel.monitoring.policy import DEFAULT_RETRAIN_COOLDOWN, parse_retraining
from flywheel.monitoring.scores import score

probabilities = st.floats(0, 1, allow_nan=False)
rows = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(probabilities, min_size=n, max_size=n)))


@given(rows)
def test_auc_and_log_loss_match_scikit_learn(data: tuple[list[int], list[float]]) -> None:
    labels, scores = data
    auc = score("auc", labels, scores)
    if len(set(labels)) < 2:
        assert auc is None
    else:
        assert auc == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert score("log_loss", labels, scores) == pytest.approx(
        metrics.log_loss(labels, [min(max(s, 1e-15), 1 - 1e-15) for s in scores],
                         labels=[0, 1]), rel=1e-6)


@given(rows)
def test_class_metrics_match_scikit_learn(data: tuple[list[int], list[float]]) -> None:
    labels, scores = data
    predicted = [int(s >= 0.5) for s in scores]
    assert score("accuracy", labels, predicted) == pytest.approx(
        metrics.accuracy_score(labels, predicted))
    for name, reference in (("precision", metrics.precision_score),
                            ("recall", metrics.recall_score)):
        found = score(name, labels, predicted)
        expected = reference(labels, predicted, zero_division=float("nan"))
        assert found is None if expected != expected else found == pytest.approx(expected)


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1,
                max_size=50))
def test_regression_metrics_match_scikit_learn(pairs: list[tuple[float, float]]) -> None:
    truth, guess = [p[0] for p in pairs], [p[1] for p in pairs]
    assert score("mae", truth, guess) == pytest.approx(metrics.mean_absolute_error(truth, guess))
    assert score("rmse", truth, guess) == pytest.approx(
        metrics.mean_squared_error(truth, guess) ** 0.5)


def test_no_rows_is_no_score() -> None:
    assert score("auc", [], []) is None
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        score("mae", [1, 2], [1])


NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                    timezones=st.just(dt.UTC)))
def test_since_reads_back_any_time(when: dt.datetime) -> None:
    assert parse_since(when.isoformat()) == when
    assert parse_since(when.isoformat().replace("+00:00", "Z")) == when
    assert parse_since(when.replace(tzinfo=None).isoformat()) == when


@given(st.integers(1, 10_000), st.sampled_from(["s", "m", "h", "d"]))
def test_since_a_duration_counts_back_from_now(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * amount
    assert parse_since(f"{amount}{unit}", now=NOW) == NOW - dt.timedelta(seconds=seconds)


def test_since_refuses_anything_else() -> None:
    with pytest.raises(InputError, match="neither a time nor a duration"):
        parse_since("yesterday-ish")


def test_a_retraining_cooldown_is_parsed() -> None:
    base = {"pipeline": "pipelines/train.yaml", "model": "purchase", "holdout": "7d",
            "evaluation": {"table": "labels", "label": "label"}}
    assert parse_retraining({"r": base}, where="monitors.yaml")["r"].cooldown == \
        DEFAULT_RETRAIN_COOLDOWN
    assert parse_retraining({"r": {**base, "cooldown": "6h"}}, where="monitors.yaml")[
        "r"].cooldown == dt.timedelta(hours=6)
    with pytest.raises(MonitorSpecError, match="retraining r: cooldown"):
        parse_retraining({"r": {**base, "cooldown": "soon"}}, where="monitors.yaml")
