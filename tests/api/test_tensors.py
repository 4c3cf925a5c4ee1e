"""Open Inference Protocol tensors: every datatype's range, flat and nested data (Hypothesis)."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.api.tensors import (
    DATATYPES,
    RequestTensor,
    TensorError,
    decode_tensor,
    encode_tensor,
)

_RANGES = {f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)}
_RANGES.update({f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)})


def tensor(datatype: str, shape: list[int], data: list[Any]) -> RequestTensor:
    return RequestTensor(name="x", shape=shape, datatype=datatype, data=data)


def test_the_datatypes_are_the_protocols() -> None:
    assert set(DATATYPES) == {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                              "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"}


@given(st.sampled_from(sorted(_RANGES)), st.data())
def test_integers_in_range_are_kept_and_outside_refused(datatype: str, data: st.DataObject
                                                        ) -> None:
    low, high = _RANGES[datatype]
    values = data.draw(st.lists(st.integers(low, high), min_size=1, max_size=8))
    assert decode_tensor(tensor(datatype, [len(values)], values)).values == values
    outside = data.draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)))
    with pytest.raises(TensorError, match=f"not an integer from {low} to {high}"):
        decode_tensor(tensor(datatype, [len(values) + 1], [*values, outside]))
    with pytest.raises(TensorError, match=datatype):
        decode_tensor(tensor(datatype, [1], [data.draw(st.sampled_from([True, 1.5, "1"]))]))


@given(st.sampled_from(["FP16", "FP32", "FP64"]),
       st.lists(st.floats(allow_nan=False, allow_infinity=False, width=16), min_size=1,
                max_size=8))
def test_floats_round_as_the_datatype_stores_them(datatype: str, values: list[float]) -> None:
    layout = {"FP16": "e", "FP32": "f", "FP64": "d"}[datatype]
    decoded = decode_tensor(tensor(datatype, [len(values)], values)).values
    assert decoded == [struct.unpack(layout, struct.pack(layout, v))[0] for v in values]


@pytest.mark.parametrize(("datatype", "value"), [("FP16", 70000.0), ("FP32", 1e39),
                                                 ("FP64", True), ("FP32", "1.0")])
def test_floats_out_of_range_or_not_numbers_are_refused(datatype: str, value: Any) -> None:
    with pytest.raises(TensorError, match=r"input 'x': element .* is not a number"):
        decode_tensor(tensor(datatype, [1], [value]))


@given(st.lists(st.booleans(), max_size=6), st.lists(st.text(max_size=5), max_size=6))
def test_bool_and_bytes_take_only_their_own_kind(flags: list[bool], texts: list[str]) -> None:
    assert decode_tensor(tensor("BOOL", [len(flags)], flags)).values == flags
    assert decode_tensor(tensor("BYTES", [len(texts)], texts)).values == texts
    with pytest.raises(TensorError, match="not true or false"):
        decode_tensor(tensor("BOOL", [1], [1]))
    with pytest.raises(TensorError, match="not a string"):
        decode_tensor(tensor("BYTES", [1], [1]))


def _nest(flat: list[Any], shape: list[int]) -> list[Any]:
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
def test_flat_and_nested_data_decode_alike(shape: list[int], data: st.DataObject) -> None:
    count = math.prod(shape)
    flat = data.draw(st.lists(st.integers(-5, 5), min_size=count, max_size=count))
    as_flat = decode_tensor(tensor("INT32", shape, flat))
    as_nested = decode_tensor(tensor("INT32", shape, _nest(flat, shape)))
    assert as_flat == as_nested and as_flat.values == flat and as_flat.rows == shape[0]
    if len(shape) > 1:
        assert [v for row in as_flat.row_values() for v in row] == flat
    with pytest.raises(TensorError, match=f"holds {count} element"):
        decode_tensor(tensor("INT32", shape, [*flat, 0]))


@pytest.mark.parametrize(("shape", "data", "problem"), [
    ([2, 2], [[1, 2], [3]], "nested unlike shape"),
    ([2, 2], [[1, 2], 3, 4], "nested unlike shape"),
    ([4], [[1, 2], [3, 4]], "nested but shape"),
    ([2, -1], [1, 2], "not an unsigned 64-bit integer"),
    ([2], [1, 2], None),
])
def test_shape_and_nesting_must_agree(shape: list[int], data: list[Any],
                                      problem: str | None) -> None:
    if problem is None:
        assert decode_tensor(tensor("INT8", shape, data)).values == data
        return
    with pytest.raises(TensorError, match=problem):
        decode_tensor(tensor("INT8", shape, data))


def test_unknown_datatype_is_named() -> None:
    with pytest.raises(TensorError, match="unknown datatype 'FLOAT'"):
        decode_tensor(tensor("FLOAT", [1], [1.0]))


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                          st.integers(-10, 10)), max_size=6))
def test_encoded_numbers_are_floats_of_shape_n(values: list[Any]) -> None:
    encoded = encode_tensor("p", values, "FP64")
    assert encoded["shape"] == [len(values)] and encoded["datatype"] == "FP64"
    assert encoded["data"] == [None if v is None else float(v) for v in values]
    labels = encode_tensor("label", [True, 1.0, "a", 2], "BYTES")["data"]
    assert labels == ["true", "1", "a", "2"]
