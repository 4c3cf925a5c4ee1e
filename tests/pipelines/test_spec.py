"""The YAML run spec and `--param k=v`: strict, typed, one-line errors; parsers are
property-tested."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flywheel.pipelines import PipelineError
from flywheel.pipelines.params import format_value, parse_param, parse_params, parse_value
from flywheel.pipelines.spec import RunSpec, load_spec, parse_spec

MINIMAL = {"pipeline": "pipelines/train.py:pipeline"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_a_full_spec_reads_in_a_few_lines(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """
pipeline: pipelines/train.py:pipeline
params: {learning_rate: 0.1, epochs: 20, layers: [64, 32], name: first}
training_data:
  feature_service: purchase
  entities: user_daily
  start: 2026-01-01
  end: 2026-03-01T12:00:00+02:00
resources:
  model: {cpus: 2, memory: 4GB}
executor: process
tags: {team: growth}
"""))
    assert spec.params == {"learning_rate": 0.1, "epochs": 20, "layers": [64, 32],
                           "name": "first"}
    assert spec.executor == "process"
    assert spec.resources["model"].resources().memory == 4 * 10**9
    assert spec.training_data is not None
    assert spec.training_data.entity_query() == (
        'SELECT * FROM "user_daily" AS __entities WHERE "event_timestamp" >= TIMESTAMPTZ '
        "'2026-01-01T00:00:00+00:00' AND \"event_timestamp\" < TIMESTAMPTZ "
        "'2026-03-01T12:00:00+02:00'")


def test_an_entity_query_without_a_range_is_passed_as_it_is() -> None:
    spec = parse_spec({**MINIMAL, "training_data": {
        "feature_service": "s", "entities": "select 1 as user_id;"}}, "x")
    assert spec.training_data is not None
    assert spec.training_data.entity_query() == "select 1 as user_id"
    ranged = parse_spec({**MINIMAL, "training_data": {
        "feature_service": "s", "entities": "select * from t", "end": "2026-01-02",
        "timestamp_column": "day"}}, "x").training_data
    assert ranged is not None
    assert ranged.entity_query() == ('SELECT * FROM (select * from t) AS __entities WHERE '
                                     "\"day\" < TIMESTAMPTZ '2026-01-02T00:00:00+00:00'")


@pytest.mark.parametrize(("raw", "message"), [
    ({**MINIMAL, "parms": {}}, "x: unknown key parms"),
    ({**MINIMAL, "training_data": {"feature_service": "s", "entities": "t", "entitys": 1}},
     "x: unknown key training_data.entitys"),
    ({**MINIMAL, "resources": {"model": {"cpu": 2}}}, "x: unknown key resources.model.cpu"),
    ({**MINIMAL, "resources": {"model": {"cpus": 0}}}, "x: resources.model.cpus: Input should "
     "be greater than 0"),
    ({"params": {}}, "x: pipeline is missing"),
    ({"pipeline": "pipelines/train.py"}, "x: pipeline must be FILE_OR_MODULE:ATTRIBUTE"),
    ({**MINIMAL, "executor": "ray"}, "x: executor: Input should be 'inprocess' or 'process'"),
    ({**MINIMAL, "params": {"bad-name": 1}}, "x: params: param name 'bad-name' is not a "
     "Python identifier"),
    ({**MINIMAL, "params": {"when": __import__("datetime").date(2026, 1, 1)}},
     "x: params.when"),
    ({**MINIMAL, "training_data": {"feature_service": "s", "entities": "t",
                                   "start": "2026-02-01", "end": "2026-01-01"}},
     "x: training_data: start must be before end"),
    ({**MINIMAL, "training_data": {"entities": "t"}},
     "x: training_data.feature_service is missing"),
    ([1, 2], "x: a run spec is a mapping"),
])
def test_a_bad_spec_is_one_line_with_its_path(raw: Any, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        parse_spec(raw, "x")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="no run spec at"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(PipelineError, match=r"not valid YAML: .* at line 2"):
        load_spec(write(tmp_path, "pipeline: a.py:p\nparams: {a: [1, 2}\n"))
    with pytest.raises(PipelineError, match="cannot be read"):
        load_spec(tmp_path)
    with pytest.raises(PipelineError, match="a run spec is a mapping"):
        load_spec(write(tmp_path, ""))


def test_a_spec_round_trips_through_its_saved_form() -> None:
    spec = parse_spec({**MINIMAL, "params": {"a": 1}, "training_data": {
        "feature_service": "s", "entities": "t", "start": "2026-01-01"}}, "x")
    assert RunSpec.model_validate(json.loads(json.dumps(spec.model_dump(mode="json")))) == spec


# --param k=v ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("epochs=10", 10), ("lr=0.01", 0.01), ("lr=1e-3", 0.001), ("neg=-4", -4),
    ("on=true", True), ("off=False", False), ("none=null", None),
    ("name=adam", "adam"), ("quoted=\"007\"", "007"), ("empty=", ""),
    ("layers=[64, 32]", [64, 32]), ("cfg={\"a\": {\"b\": 1}}", {"a": {"b": 1}}),
    ("eq=a=b", "a=b"), ("inf=inf", "inf"), ("nan=nan", "nan"), ("big=1e999", "1e999"),
    ("ver=1.2.3", "1.2.3"), ("spaced= 5 ", 5),
])
def test_param_values_are_typed(text: str, value: Any) -> None:
    key, parsed = parse_param(text)
    assert key == text.partition("=")[0]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["noequals", "=1", "bad-key=1", "1x=2", "a.b=1"])
def test_a_malformed_param_is_refused(text: str) -> None:
    with pytest.raises(PipelineError, match="is not KEY=VALUE"):
        parse_param(text)


def test_bad_json_is_one_line() -> None:
    with pytest.raises(PipelineError, match=r"'\[1, 2' is not valid JSON: .* at column"):
        parse_param("layers=[1, 2")


def test_a_later_param_wins() -> None:
    assert parse_params(["a=1", "b=x", "a=2"]) == {"a": 2, "b": "x"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@given(json_values)
def test_every_json_value_round_trips_through_its_text(value: Any) -> None:
    parsed = parse_value(format_value(value))
    assert parsed == value
    assert type(parsed) is type(value) or (isinstance(value, float) and parsed == value)


@given(st.text().filter(lambda t: t.strip()[:1] not in ("[", "{", '"')))
def test_any_text_parses_without_error(text: str) -> None:
    value = parse_value(text)
    if isinstance(value, str):
        assert value == text  # plain text comes back untouched
    else:
        assert isinstance(value, bool | int | float) or value is None
        assert value is None or isinstance(value, bool) or math.isfinite(value)


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), json_values)
def test_key_value_text_parses_back(key: str, value: Any) -> None:
    assert parse_param(f"{key}={format_value(value)}") == (key, value)


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), json_values,
                       max_size=5))
def test_params_from_yaml_and_from_text_agree(params: dict[str, Any]) -> None:
    from_yaml = parse_spec(yaml.safe_load(yaml.safe_dump({**MINIMAL, "params": params})),
                           "x").params
    assert from_yaml == params
    assert parse_params(f"{k}={format_value(v)}" for k, v in params.items()) == params
