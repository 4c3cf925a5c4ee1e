"""Deployment files: every shape reads into a spec or fails with one line naming the file."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.serving.errors import DeploymentSpecError
from flywheel.serving.spec import POLICIES, parse_spec

WHERE = "deployments/d.yaml"


def parse(document: Any) -> Any:
    return parse_spec("d", document, source=WHERE)


def fails(document: Any, words: str) -> str:
    with pytest.raises(DeploymentSpecError) as caught:
        parse(document)
    line = str(caught.value)
    assert "\n" not in line and line.startswith(f"{WHERE}: ") and words in line, line
    return line


def members(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": f"m{i}", "model": f"purchase@a{i}", **extra} for i in range(count)]


def test_the_short_form_is_one_model_under_policy_single() -> None:
    spec = parse({"model": "purchase@champion"})
    assert spec.policy == "single" and spec.member_names == ["purchase"]
    assert str(spec.members[0].model) == "purchase@champion"
    assert spec.on_missing == "refuse" and spec.batching.max_batch_size == 64


def test_each_policy_reads_its_own_section() -> None:
    weighted = parse({"policy": "weighted", "members": [
        {"name": "a", "model": "purchase@champion", "weight": 0.7},
        {"name": "b", "model": "purchase@challenger", "weight": 0.3}]})
    assert [m.weight for m in weighted.members] == [0.7, 0.3]
    canary = parse({"policy": "canary", "members": members(2), "canary": {"share": 0.1}})
    assert canary.canary_share == 0.1
    bandit = parse({"policy": "bandit", "members": members(3),
                    "bandit": {"algorithm": "epsilon_greedy", "floor": 0.1, "epsilon": 0.2}})
    assert bandit.bandit is not None and bandit.bandit.epsilon == 0.2
    stacking = parse({"policy": "stacking", "members": members(2),
                      "meta_model": "stack@champion"})
    assert str(stacking.meta_model) == "stack@champion"
    defaults = parse({"model": "m", "defaults": {"pages": 0}, "batching": {"max_wait_ms": 0}})
    assert defaults.on_missing == "default" and defaults.batching.max_wait_ms == 0
    assert defaults.batching.loop_budget_ms == 10.0
    assert parse({"model": "m", "batching": {"loop_budget_ms": 0}}).batching.loop_budget_ms == 0


@pytest.mark.parametrize(("document", "words"), [
    ({"model": "m", "colour": "red"}, "unknown key 'colour' in the file"),
    ({"policy": "weighted", "members": [{"model": "a", "weight": 0.5, "w": 1},
                                        {"model": "b", "weight": 0.5}]}, "unknown key 'w'"),
    ({"policy": "weighted", "members": [{"name": "a", "model": "m@x", "weight": 0.6},
                                        {"name": "b", "model": "m@y", "weight": 0.6}]},
     "the weights add up to 1.2, not 1"),
    ({"policy": "weighted", "members": members(2)}, "has no weight"),
    ({"policy": "canary", "members": members(2), "canary": {"share": 1.5}},
     "canary share is 1.5, outside (0, 1)"),
    ({"policy": "canary", "members": members(3), "canary": {"share": 0.1}},
     "exactly 2 members"),
    ({"policy": "bandit", "members": members(2), "bandit": {"floor": 0.5}},
     "bandit floor is 0.5, outside [0, 0.5)"),
    ({"policy": "bandit", "members": members(2), "bandit": {"epsilon": 0.1}},
     "epsilon_greedy only"),
    ({"policy": "stacking", "members": members(2)}, "needs a `meta_model`"),
    ({"model": "m", "meta_model": "s"}, "applies to policy stacking only"),
    ({"policy": "sometimes", "members": members(2)}, "unknown policy 'sometimes'"),
    ({"model": "not a uri!"}, "cannot read the model URI"),
    ({"model": "m", "on_missing": "default"}, "needs `defaults`"),
    ({"model": "m", "batching": {"max_batch_size": 0}}, "max_batch_size is 0"),
    ({"model": "m", "batching": {"loop_budget_ms": -1}}, "loop_budget_ms is -1, outside"),
    ({"model": "m", "batching": {"loop_budget_ms": "fast"}}, "loop_budget_ms must be a number"),
    ({"policy": "shadow", "members": [{"model": "m@a"}, {"model": "m@b"}]}, "used twice"),
    (["model", "m"], "the file must be a mapping, not a list"),
])
def test_a_bad_file_is_one_line_naming_it(document: Any, words: str) -> None:
    fails(document, words)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=12))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
_KEYS = st.sampled_from(["model", "policy", "members", "meta_model", "canary", "bandit",
                         "defaults", "on_missing", "batching", "entity", "other"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_document_reads_or_fails_with_one_line(document: dict[str, Any]) -> None:
    try:
        spec = parse(document)
    except DeploymentSpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(WHERE)
    else:
        assert spec.policy in POLICIES and spec.members


_WEIGHTS = st.lists(st.floats(min_value=0.001, max_value=1.0), min_size=2, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_WEIGHTS)
def test_weights_are_accepted_exactly_when_they_add_up_to_one(weights: list[float]) -> None:
    document = {"policy": "weighted", "members": [
        {"name": f"m{i}", "model": "purchase", "weight": w} for i, w in enumerate(weights)]}
    if abs(sum(weights) - 1.0) <= 1e-6:
        assert [m.weight for m in parse(document).members] == weights
    else:
        fails(document, "the weights add up to")
    scaled = [w / math.fsum(weights) for w in weights]
    document["members"] = [{"name": f"m{i}", "model": "purchase", "weight": w}
                           for i, w in enumerate(scaled)]
    assert math.isclose(sum(m.weight or 0 for m in parse(document).members), 1.0)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=2, max_value=6))
def test_share_and_floor_bounds(value: float, arms: int) -> None:
    canary = {"policy": "canary", "members": members(2), "canary": {"share": value}}
    if 0 < value < 1:
        assert parse(canary).canary_share == value
    else:
        fails(canary, "canary share")
    bandit = {"policy": "bandit", "members": members(arms), "bandit": {"floor": value}}
    if 0 <= value < 1 / arms:
        spec = parse(bandit)
        assert spec.bandit is not None and spec.bandit.floor == value
    else:
        fails(bandit, "bandit floor")
