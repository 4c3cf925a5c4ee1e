"""An Open Inference Protocol request as a deployment's predict call, and its answer as the
protocol's response.

The input tensors of a request take one of three forms:

- entity keys (a tensor named as the deployment's entity key, BYTES or integers, one id
  per row): the features are read from the online store; any other tensor is a request
  field, one value per row, for on-demand features;
- one tensor per feature column, named as the column, each of shape [N] or [N, 1];
- a single tensor of shape [N, F], its columns in the deployment's column order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from flywheel.api.body import decode_json
from flywheel.api.tensors import (
    DecodedTensor,
    Parameters,
    RequestTensor,
    TensorError,
    decode_tensor,
    encode_tensor,
)

__all__ = ["EXTRA_OUTPUTS", "FIXED_OUTPUTS", "InferRequest", "PredictArguments",
           "RequestedOutput", "decode_infer", "infer_arguments", "infer_response",
           "output_datatype"]

EXTRA_OUTPUTS = ("prediction_id", "member", "model_version")
"""Outputs every deployment answers besides its models' own: per row, the id to send
feedback for, and the member and model version that answered."""
FIXED_OUTPUTS = {"probability": "FP64", "value": "FP64", "model_version": "INT64"}
"""Datatypes of outputs by name; every other output (labels, ids) is BYTES, its text, so
that an output's datatype never depends on the values of one answer."""


class RequestedOutput(msgspec.Struct):
    name: str
    parameters: Parameters | None = None


class InferRequest(msgspec.Struct):
    """`$inference_request` of the protocol."""

    inputs: list[RequestTensor]
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[RequestedOutput] | None = None


@dataclass(frozen=True, slots=True)
class PredictArguments:
    """What `Deployment.predict_async` is called with."""

    entities: dict[str, list[Any]] | None = None
    instances: list[dict[str, Any]] | None = None
    request_data: dict[str, list[Any]] | None = None


_decode = msgspec.json.Decoder(InferRequest).decode


def decode_infer(body: bytes) -> InferRequest:
    """The request, or a one-line TensorError (400)."""
    request = decode_json(_decode, body, invalid="not an inference request",
                          hint='send {"inputs": [{"name", "shape", "datatype", "data"}, ...]}',
                          error=TensorError, not_json=TensorError)
    if not request.inputs:
        raise TensorError("`inputs` is empty", hint="send at least one tensor")
    names = [t.name for t in request.inputs]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TensorError(f"input(s) {', '.join(map(repr, twice))} sent twice")
    return request


def infer_arguments(inputs: Sequence[RequestTensor], *, columns: Sequence[str],
                    entity_keys: Sequence[str]) -> PredictArguments:
    """The predict call for the request's tensors (TensorError if they match
    none of the three forms)."""
    tensors = [decode_tensor(t) for t in inputs]
    keyed = [t for t in tensors if t.name in entity_keys]
    if keyed:
        others = [t for t in tensors if t.name not in entity_keys]
        _common_rows(tensors)
        return PredictArguments(entities={t.name: _column(t) for t in keyed},
                                request_data={t.name: _column(t) for t in others} or None)
    if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].name not in columns:
        return PredictArguments(instances=_matrix_rows(tensors[0], columns))
    unknown = [t.name for t in tensors if t.name not in columns]
    if unknown:
        raise TensorError(
            f"unknown input(s) {', '.join(map(repr, unknown))}",
            hint=_expected(columns, entity_keys))
    absent = [c for c in columns if c not in {t.name for t in tensors}]
    if absent:
        raise TensorError(f"missing input(s) {', '.join(map(repr, absent))}",
                                    hint=_expected(columns, entity_keys))
    count = _common_rows(tensors)
    values = {t.name: _column(t) for t in tensors}
    return PredictArguments(instances=[{name: column[i] for name, column in values.items()}
                                       for i in range(count)])


def _expected(columns: Sequence[str], entity_keys: Sequence[str]) -> str:
    keys = " or ".join(map(repr, entity_keys)) or "(none: this deployment reads no entities)"
    return (f"send the entity key {keys}, one tensor per feature column "
            f"({', '.join(columns)}), or one [N, {len(columns)}] tensor in that order")


def _column(tensor: DecodedTensor) -> list[Any]:
    """The tensor's values, one per row: shape [N] or [N, 1]."""
    if len(tensor.shape) == 1 or (len(tensor.shape) == 2 and tensor.shape[1] == 1):
        return tensor.values
    raise TensorError(f"input '{tensor.name}' has shape {list(tensor.shape)}; "
                                "a column is [N] or [N, 1]")


def _common_rows(tensors: Sequence[DecodedTensor]) -> int:
    counts = {t.rows for t in tensors if t.shape}
    if len(counts) != 1:
        shown = ", ".join(f"{t.name} {list(t.shape)}" for t in tensors)
        raise TensorError(f"the inputs disagree on the number of rows: {shown}")
    return counts.pop()


def _matrix_rows(tensor: DecodedTensor, columns: Sequence[str]) -> list[dict[str, Any]]:
    width = tensor.shape[1]
    if width != len(columns):
        raise TensorError(
            f"input '{tensor.name}' has {width} column(s); the deployment takes "
            f"{len(columns)}: {', '.join(columns)}")
    return [dict(zip(columns, row, strict=True)) for row in tensor.row_values()]


def infer_response(predictions: Sequence[dict[str, Any]], *, model_name: str,
                   request_id: str | None, requested: Sequence[str] | None,
                   ) -> dict[str, Any]:
    """`$inference_response`: one tensor of shape [N] per output (those `requested`, else
    all), `model_version` when a single version answered every row, `id` when one was
    given."""
    names: dict[str, None] = {}
    for row in predictions:
        names.update(dict.fromkeys(row["outputs"]))
    names.update(dict.fromkeys(EXTRA_OUTPUTS))
    wanted = list(names) if requested is None else list(requested)
    outputs = [encode_tensor(name, [_value(row, name) for row in predictions],
                             output_datatype(name)) for name in wanted]
    response: dict[str, Any] = {"model_name": model_name}
    versions = {row["version"] for row in predictions}
    if len(versions) == 1:
        response["model_version"] = str(versions.pop())
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = outputs
    return response


def output_datatype(name: str) -> str:
    return FIXED_OUTPUTS.get(name, "BYTES")


def _value(row: dict[str, Any], name: str) -> Any:
    if name == "model_version":
        return row["version"]
    if name in ("prediction_id", "member"):
        return row[name]
    return row["outputs"].get(name)
