"""Tensors of the Open Inference Protocol v2 (REST), decoded and encoded.

A request tensor is `{name, shape, datatype, data, parameters?}`; `data` holds the elements
in row-major order, either flat or nested as the shape says. Each element is checked
against the datatype (integers in range, floats representable, strings for BYTES), so a
bad element is a one-line 400 naming the tensor, never a wrong score.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from flywheel._core.errors import InputError

__all__ = ["DATATYPES", "DecodedTensor", "Parameters", "RequestTensor", "TensorError",
           "decode_tensor", "encode_tensor"]

Parameters = dict[str, str | int | float | bool]


class TensorError(InputError):
    """A tensor that does not hold what its shape and datatype say."""


class RequestTensor(msgspec.Struct):
    """One input tensor as a client sends it."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: Parameters | None = None


@dataclass(frozen=True, slots=True)
class DecodedTensor:
    """A checked tensor: its elements flat, in row-major order, as Python values."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: list[Any]

    @property
    def rows(self) -> int:
        """The first dimension (1 for a scalar)."""
        return self.shape[0] if self.shape else 1

    def row_values(self) -> list[list[Any]]:
        """The elements grouped per row: `rows` lists of the remaining dimensions' size."""
        width = math.prod(self.shape[1:]) if len(self.shape) > 1 else 1
        return [self.values[i * width:(i + 1) * width] for i in range(self.rows)]


_INTEGERS = {f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)}
_INTEGERS.update({f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)})
_FLOATS = {"FP16": "e", "FP32": "f", "FP64": "d"}  # struct formats: values round as stored
DATATYPES = ("BOOL", *_INTEGERS, *_FLOATS, "BYTES")
"""The datatypes of the protocol's tensor-data table."""


def decode_tensor(tensor: RequestTensor) -> DecodedTensor:
    """The tensor's elements, checked against its shape and datatype (TensorError if not)."""
    where = f"input '{tensor.name}'"
    datatype = tensor.datatype
    if datatype not in DATATYPES:
        raise TensorError(f"{where}: unknown datatype {datatype!r}",
                          hint=f"use one of {', '.join(DATATYPES)}")
    shape = _check_shape(where, tensor.shape)
    values = _flatten(where, tensor.data, shape)
    convert = _converter(datatype)
    try:
        checked = [convert(value) for value in values]
    except _BadElement as exc:
        raise TensorError(f"{where}: element {exc.value!r} is not {exc.expected} "
                          f"({datatype})") from None
    return DecodedTensor(tensor.name, datatype, shape, checked)


def _check_shape(where: str, shape: Sequence[int]) -> tuple[int, ...]:
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < 2**64:
            raise TensorError(f"{where}: shape {list(shape)} has a dimension that is not an "
                              "unsigned 64-bit integer")
    return tuple(shape)


def _flatten(where: str, data: list[Any], shape: tuple[int, ...]) -> list[Any]:
    """Row-major elements of flat `data`, or of `data` nested exactly as `shape`."""
    expected = math.prod(shape)
    if not any(isinstance(item, list) for item in data):
        if len(data) != expected:
            raise TensorError(f"{where}: shape {list(shape)} holds {expected} element(s), "
                              f"data has {len(data)}")
        return data
    if len(shape) < 2:
        raise TensorError(f"{where}: data is nested but shape {list(shape)} has one "
                          "dimension")
    flat: list[Any] = []
    _walk(where, data, shape, 0, flat)
    return flat


def _walk(where: str, node: list[Any], shape: tuple[int, ...], depth: int,
          flat: list[Any]) -> None:
    if len(node) != shape[depth]:
        raise TensorError(f"{where}: data is nested unlike shape {list(shape)} (dimension "
                          f"{depth} has {len(node)} element(s), not {shape[depth]})")
    inner = depth + 1 < len(shape)
    for item in node:
        if isinstance(item, list) != inner:
            raise TensorError(f"{where}: data is nested unlike shape {list(shape)}")
        if inner:
            _walk(where, item, shape, depth + 1, flat)
        else:
            flat.append(item)


class _BadElement(Exception):
    def __init__(self, value: Any, expected: str) -> None:
        self.value = value
        self.expected = expected


def _converter(datatype: str) -> Any:
    if datatype == "BOOL":
        return _boolean
    if datatype == "BYTES":
        return _text
    if datatype in _INTEGERS:
        low, high = _INTEGERS[datatype]

        def integer(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise _BadElement(value, f"an integer from {low} to {high}")
            return value

        return integer
    layout = _FLOATS[datatype]

    def number(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _BadElement(value, "a number")
        try:
            stored: float = struct.unpack(layout, struct.pack(layout, value))[0]
        except (OverflowError, struct.error):
            raise _BadElement(value, "a number in range") from None
        if math.isinf(stored) and not math.isinf(value):
            raise _BadElement(value, "a number in range")
        return stored

    return number


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _BadElement(value, "true or false")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _BadElement(value, "a string")
    return value


def encode_tensor(name: str, values: Sequence[Any], datatype: str) -> dict[str, Any]:
    """A response tensor of shape [N] holding `values` as `datatype`: FP64 as floats (a
    missing value as null), INT64 as integers, BYTES as text (non-strings as JSON)."""
    data: list[Any]
    if datatype == "FP64":
        data = [None if v is None else float(v) for v in values]
    elif datatype == "INT64":
        data = [None if v is None else int(v) for v in values]
    elif datatype == "BYTES":
        data = [v if isinstance(v, str) else _as_text(v) for v in values]
    else:
        raise ValueError(f"responses are encoded as FP64, INT64 or BYTES, not {datatype}")
    return {"name": name, "datatype": datatype, "shape": [len(data)], "data": data}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a label stored as 1.0 reads as "1"
    return msgspec.json.encode(value).decode()
