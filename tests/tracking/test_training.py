"""Reading back what a run recorded of its training data and its bookkeeping metrics."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flywheel.tracking.training import (
    BOOKKEEPING_TAG,
    TRAINING_DATA_TAG,
    bookkeeping_tags,
    model_metrics,
    training_data,
    training_tags,
)

KEYS = st.text(st.sampled_from("abcdefgh_s"), min_size=1, max_size=8)


@given(st.dictionaries(KEYS, st.floats(allow_nan=False)), st.lists(KEYS, max_size=5))
def test_listed_bookkeeping_is_left_out_and_nothing_else(metrics: dict[str, float],
                                                         listed: list[str]) -> None:
    kept = model_metrics(metrics, bookkeeping_tags(listed))
    assert kept == {k: v for k, v in metrics.items() if k not in listed}


def test_runs_recorded_before_the_tag_are_read_by_their_kind() -> None:
    metrics = {"steps_ran": 3.0, "steps_cached": 1.0, "accuracy": 0.9, "seconds": 2.0}
    assert model_metrics(metrics, {"flywheel.kind": "pipeline"}) == {"accuracy": 0.9,
                                                                      "seconds": 2.0}
    assert model_metrics(metrics, {"flywheel.step": "model"}) == {
        "steps_ran": 3.0, "steps_cached": 1.0, "accuracy": 0.9}
    assert model_metrics(metrics, {}) == metrics
    assert model_metrics({"steps_ran": 1.0}, {BOOKKEEPING_TAG: ""}) == {"steps_ran": 1.0}


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4))
def test_training_data_round_trips(lineage: dict[str, object]) -> None:
    assert training_data(training_tags(lineage)) == lineage


@given(st.text(max_size=40))
def test_a_tag_someone_else_wrote_is_no_record_not_an_error(text: str) -> None:
    found = training_data({TRAINING_DATA_TAG: text})
    assert found is None or isinstance(found, dict)
