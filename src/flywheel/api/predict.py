"""Model serving: `POST /v1/models/{deployment}/predict`.

A latency-critical path: the body is decoded and checked with msgspec (no pydantic model
per request), the deployment scores off the event loop (`Deployment.predict_async`, through
its micro-batcher) and the answer is encoded with msgspec.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import Response
from pydantic import BaseModel

from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError
from flywheel.api.body import check_media_type, decode_json, read_body
from flywheel.api.deployments import DeploymentFinder
from flywheel.api.errors import ERROR_RESPONSES
from flywheel.api.events import responses
from flywheel.api.metrics import ServingMetrics
from flywheel.serving.errors import BadPredictRequestError

if TYPE_CHECKING:
    from flywheel.serving.results import PredictionBatch

__all__ = ["ROUTE", "PredictHandler", "PredictRequest", "PredictResponse", "PredictionItem",
           "decode_predict", "encode_batch", "predict_router"]

_log = logging.getLogger("flywheel.server")

ROUTE = "predict"
"""The `route` label of this route's metrics."""


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`entities` ({entity key: [ids]}) or `instances` ([{feature: value}]); `request_data`
    ({field: [values]}, one per row) for on-demand features."""

    entities: dict[str, list[Any]] | None = None
    instances: list[dict[str, Any]] | None = None
    request_data: dict[str, list[Any]] | None = None
    time: str | None = None
    """When the scored moment happened (RFC 3339, with its offset): the prediction's event
    time in the log, for replaying recorded traffic. Default: now."""


class PredictionItem(BaseModel):
    prediction_id: str
    member: str
    model: str
    version: int
    outputs: dict[str, Any]
    missing: list[str]


class PredictResponse(BaseModel):
    """Documentation only: the answer is encoded with msgspec."""

    deployment: str
    predictions: list[PredictionItem]


_decode = msgspec.json.Decoder(PredictRequest).decode
_encode = msgspec.json.Encoder().encode

_SCALAR: dict[str, Any] = {"type": ["string", "number", "integer", "boolean", "null"]}
_COLUMNS = {"type": "object", "additionalProperties": {"type": "array", "items": _SCALAR}}
_BODY = {"required": True, "content": {"application/json": {
    "schema": {
        "type": "object", "additionalProperties": False,
        "oneOf": [{"required": ["entities"]}, {"required": ["instances"]}],
        "properties": {
            "entities": {**_COLUMNS, "minProperties": 1, "description": "entity key -> ids, "
                         "one per row: features are read from the online store"},
            "instances": {"type": "array", "minItems": 1, "description": "raw feature rows",
                          "items": {"type": "object", "additionalProperties": _SCALAR}},
            "request_data": {**_COLUMNS, "description": "request field -> values, one per "
                             "row, for on-demand features"},
            "time": {"type": "string", "format": "date-time", "description": "when the "
                     "scored moment happened, for replaying recorded traffic: the "
                     "predictions' event time in the log (default: now)"}}},
    "example": {"entities": {"user_id": ["u1"]}}}}}


def decode_predict(body: bytes) -> PredictRequest:
    """The request, or a one-line 400 (not JSON, or not a predict request)."""
    request = decode_json(_decode, body, invalid="invalid request",
                          hint='send {"entities": {...}} or {"instances": [...]}',
                          error=BadPredictRequestError, not_json=BadPredictRequestError)
    if (request.entities is None) == (request.instances is None):
        raise BadPredictRequestError("send either `entities` or `instances`, not both or "
                                     "neither", hint='e.g. {"entities": {"user_id": ["u1"]}}')
    if request.time is not None:
        request.time = _event_time(request.time)
    return request


_MAX_FUTURE = dt.timedelta(days=1)


def _event_time(text: str) -> str:
    """`time` as UTC to the microsecond, or a one-line 400."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise BadPredictRequestError(f"time {text!r} is not an RFC 3339 date-time with an "
                                     "offset", hint='e.g. "2026-03-01T12:00:00Z"')
    when = when.astimezone(dt.UTC)
    if when > utc_now() + _MAX_FUTURE:
        raise BadPredictRequestError(f"time {text!r} is more than a day ahead of the clock")
    return when.isoformat(timespec="microseconds")


def encode_batch(batch: PredictionBatch) -> bytes:
    return _encode(batch.to_dict())


class PredictHandler:
    """One predict request, from the deployment's name, the declared media type and the
    body to the encoded answer: shared by the route and by the server's ASGI fast path
    (`flywheel.api.fast_path`)."""

    def __init__(self, *, deployments: DeploymentFinder, metrics: ServingMetrics) -> None:
        self._deployments = deployments
        self._metrics = metrics

    async def answer(self, deployment: str, content_type: str | None,
                     body: Callable[[], Awaitable[bytes]]) -> bytes:
        started = time.perf_counter()
        known: str | None = None
        try:
            check_media_type(content_type)
            wanted = decode_predict(await body())
            target = await self._deployments.get(deployment)
            known = deployment
            batch = await target.predict_async(entities=wanted.entities,
                                               instances=wanted.instances,
                                               request_data=wanted.request_data,
                                               at=wanted.time)
        except FlywheelError as exc:
            self._metrics.failed(ROUTE, known, exc.http_status)
            raise
        self._metrics.observe(ROUTE, deployment, batch, time.perf_counter() - started)
        return encode_batch(batch)


def predict_router(handler: PredictHandler, max_request_bytes: int,
                   dependencies: Sequence[Depends] = ()) -> APIRouter:
    """`POST /v1/models/{deployment}/predict`; `dependencies` (the `predict` token check)
    run before the body is read. In the server, the fast path (`flywheel.api.fast_path`)
    answers this route before FastAPI routes it; the route is what the OpenAPI document
    describes."""
    router = APIRouter(tags=["models"])

    @router.post(
        "/v1/models/{deployment}/predict", summary="Score entities or raw feature rows",
        response_model=None, dependencies=list(dependencies),
        responses={200: {"model": PredictResponse, "description": "One prediction per row, "
                         "with its `prediction_id` (for feedback), the member and model "
                         "version that answered, and `missing`: the feature views that had "
                         "no live value for the row's entity (scored with defaults)"},
                   **responses({
                       400: "The body is not a predict request, or its rows cannot be scored",
                       404: "No such deployment",
                       415: "The body is declared as something other than JSON",
                       422: "Entities without features online, in a deployment that refuses "
                            "them (named)",
                       **ERROR_RESPONSES})},
        openapi_extra={"requestBody": _BODY},
    )
    async def predict(deployment: str, request: Request) -> Response:
        """Score the rows. With `entities` the features of each entity are read from the
        online store (every member's feature service in one round trip) and on-demand
        features computed from `request_data`; with `instances` the rows are scored as
        sent. Each prediction is written to the log, off the response path."""
        answer = await handler.answer(deployment, request.headers.get("content-type"),
                                      lambda: read_body(request, max_request_bytes))
        return Response(answer, media_type="application/json")

    return router
