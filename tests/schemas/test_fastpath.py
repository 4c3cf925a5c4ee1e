"""The msgspec fast path never accepts what the JSON Schema rejects."""

from __future__ import annotations

from typing import Any

import fastjsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.schemas.fastpath import compile_checker
from flywheel.schemas.validation import DRAFT7, compile_validator

names = st.sampled_from(["a", "b", "c", "user-id", "x y"])
small_ints = st.integers(-5, 5)


def _string() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"type": st.just("string")}, optional={
        "minLength": st.integers(0, 3), "maxLength": st.integers(0, 4),
        "pattern": st.sampled_from(["^a", "b$", "[0-9]+", "^.{2}$"]),
        "format": st.sampled_from(["date-time", "date", "email"]),
    })


def _number() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"type": st.sampled_from(["integer", "number"])}, optional={
        "minimum": small_ints | st.floats(-5, 5), "maximum": small_ints,
        "exclusiveMinimum": small_ints, "exclusiveMaximum": small_ints | st.booleans(),
        "multipleOf": st.just(2),
    })


scalars = st.one_of(
    _string(), _number(),
    st.just({"type": "boolean"}), st.just({"type": "null"}),
    st.fixed_dictionaries({"enum": st.lists(st.sampled_from(["x", "y", 1, None]), min_size=1,
                                            max_size=3)}),
    st.fixed_dictionaries({"type": st.lists(st.sampled_from(
        ["string", "integer", "number", "null", "boolean"]), min_size=1, max_size=3, unique=True)},
        optional={"maxLength": st.integers(0, 3), "minimum": small_ints}),
    st.just({"const": 1}),
)


def _with_children(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    array = st.fixed_dictionaries({"type": st.just("array"), "items": inner},
                                  optional={"minItems": st.integers(0, 2),
                                            "maxItems": st.integers(0, 3)})
    obj = st.builds(
        lambda props, req, add: {"type": "object", "properties": props,
                                 "required": sorted({p for p in req if p in props}),
                                 "additionalProperties": add},
        st.dictionaries(names, inner, max_size=3), st.lists(names, max_size=2),
        st.booleans() | st.just({"type": "integer"}))
    return array | obj


schemas = st.recursive(scalars, _with_children, max_leaves=6)
top_level = st.builds(
    lambda props, req, add: {"type": "object", "properties": props,
                             "required": sorted({p for p in req if p in props}),
                             "additionalProperties": add},
    st.dictionaries(names, schemas, max_size=4), st.lists(names, max_size=3), st.booleans())

values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(-10, 10)
    | st.sampled_from(["", "a", "ab", "b", "x", "12", "2026-01-01T00:00:00Z",
                       "2026-01-01T00:00:00", "2026-02-30", "2026-01-01", "a@b.c"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=4),
    max_leaves=10)


def _accepts(validator: Any, data: Any) -> bool:
    try:
        validator(data)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(schema=top_level, data=st.dictionaries(names, values, max_size=5))
def test_fast_acceptance_implies_schema_acceptance(schema: dict[str, Any], data: Any) -> None:
    document = {"$schema": DRAFT7, **schema}
    full = fastjsonschema.compile(document, use_default=False)
    fast = compile_checker(document, DRAFT7)
    if fast is not None and fast(data):
        assert _accepts(full, data), (schema, data)
    assert _accepts(compile_validator(document), data) == _accepts(full, data)


def test_common_event_schemas_get_the_fast_path() -> None:
    document = {
        "$schema": DRAFT7, "type": "object", "additionalProperties": False,
        "properties": {"user_id": {"type": "string", "maxLength": 64},
                       "at": {"type": "string", "format": "date-time"},
                       "qty": {"type": "integer", "minimum": 1},
                       "price": {"type": ["number", "null"], "minimum": 0},
                       "tags": {"type": "array", "items": {"type": "string"}},
                       "currency": {"type": "string", "enum": ["EUR", "USD"]}},
        "required": ["user_id", "qty"]}
    fast = compile_checker(document, DRAFT7)
    assert fast is not None
    assert fast({"user_id": "u", "qty": 2, "at": "2026-01-01T00:00:00Z", "price": None})
    assert not fast({"user_id": "u", "qty": 0})
    assert not fast({"user_id": "u", "qty": 1, "at": "2026-01-01"})
    assert not fast({"user_id": "u", "qty": 1, "surprise": 1})
    assert not fast({"user_id": "u", "qty": True})
