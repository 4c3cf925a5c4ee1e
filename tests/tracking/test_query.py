"""Run search conditions in text: property tests of the parser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel._core.errors import InputError
from flywheel._core.metadata.runs import RunFilter
from flywheel.tracking import format_filter, parse_filter, parse_order

keys = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:]{0,20}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
numbers = st.floats(allow_nan=False)


@given(keys, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), numbers)
def test_metric_filters_round_trip(key: str, op: str, value: float) -> None:
    condition = RunFilter("metrics", key, op, value)  # type: ignore[arg-type]
    assert parse_filter(format_filter(condition)) == condition


@given(st.sampled_from(["params", "tags"]), keys, st.sampled_from(["=", "!="]), texts)
def test_text_filters_round_trip(field: str, key: str, op: str, value: str) -> None:
    condition = RunFilter(field, key, op, value)  # type: ignore[arg-type]
    assert parse_filter(format_filter(condition)) == condition


@given(st.text(max_size=40))
def test_any_text_parses_or_is_one_input_error(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except InputError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert parsed.field in ("params", "metrics", "tags")
        if parsed.field == "metrics":
            assert isinstance(parsed.value, float) and not math.isnan(parsed.value)
        else:
            assert parsed.op in ("=", "!=")


@pytest.mark.parametrize(("text", "expected"), [
    ("metrics.auc>=0.8", RunFilter("metrics", "auc", ">=", 0.8)),
    ("  params.model == 'lgbm' ", RunFilter("params", "model", "=", "lgbm")),
    ("tags.flywheel.step != train", RunFilter("tags", "flywheel.step", "!=", "train")),
    ('params.note = "a b"', RunFilter("params", "note", "=", "a b")),
    ("params.empty =", RunFilter("params", "empty", "=", "")),
])
def test_examples(text: str, expected: RunFilter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("auc > 0.8", "cannot read"),
    ("metrics.auc ~ 0.8", "cannot read"),
    ("metrics.auc > high", "not a number"),
    ("metrics.auc > nan", "NaN"),
    ("params.lr > 0.1", "compare as text"),
    ("metrics. > 1", "cannot read"),
])
def test_bad_filters(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_filter(text)


def test_order() -> None:
    assert parse_order("metrics.auc") == ("auc", True)
    assert parse_order("metrics.loss ASC") == ("loss", False)
    assert parse_order(" metrics.val.auc desc ") == ("val.auc", True)
    for bad in ("auc", "params.lr", "metrics.auc up", "", "metrics.auc\n x"):
        with pytest.raises(InputError, match="order"):
            parse_order(bad)
