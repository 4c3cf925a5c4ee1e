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
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError
from flywheel.api.auth import bearer_secret
from flywheel.api.body import check_media_type, decode_json, read_body, too_large
from flywheel.api.deployments import DeploymentFinder
from flywheel.api.errors import ERROR_RESPONSES, error_response, server_bug_response
from flywheel.api.events import responses
from flywheel.api.metrics import ServingMetrics
from flywheel.serving.errors import BadPredictRequestError

if TYPE_CHECKING:
    from flywheel.serving.results import PredictionBatch

__all__ = ["ROUTE", "PredictFastPath", "PredictHandler", "PredictRequest", "PredictResponse",
           "PredictionItem", "decode_predict", "encode_batch", "predict_router"]

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
    body to the encoded answer: shared by the route and by its ASGI fast path."""

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
    run before the body is read. In the server, `PredictFastPath` answers this route
    before FastAPI routes it; the route is what the OpenAPI document describes."""
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


_PREFIX = "/v1/models/"
_SUFFIX = "/predict"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class PredictFastPath:
    """Answers `POST /v1/models/{deployment}/predict` before the app's middleware stack,
    routing, dependency resolution and response classes: at 32 connections on two cores
    those took about half the server's CPU per prediction. `FlywheelApp` asks it first;
    everything else is the app's as before. Its errors are the app's own one-line
    answers; an unexpected one is logged with its traceback and answered 500, as the
    app's error middleware would."""

    def __init__(self, *, handler: PredictHandler, max_request_bytes: int,
                 check_token: Callable[[str | None], Awaitable[object]] | None) -> None:
        self._handler = handler
        self._limit = max_request_bytes
        self._check_token = check_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is a predict request; False (nothing sent) if not."""
        name = _deployment_of(scope)
        if name is None:
            return False
        headers = _headers(scope)
        try:
            if self._check_token is not None:
                await self._check_token(bearer_secret(headers.get(b"authorization")))
            answer = await self._handler.answer(
                name, headers.get(b"content-type"),
                lambda: _read_body(receive, headers.get(b"content-length"), self._limit))
        except FlywheelError as exc:
            if exc.http_status >= 500:  # the server's trouble: named in its log
                _log.error("POST %s answered %d: %s", scope["path"], exc.http_status,
                           exc.one_line())
            await error_response(exc)(scope, receive, send)
            return True
        except ClientDisconnect:
            return True
        except Exception:
            _log.exception("unexpected error on POST %s", scope["path"])
            await server_bug_response(scope["path"])(scope, receive, send)
            return True
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_JSON_HEADERS,
                                (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})
        return True


def _deployment_of(scope: Scope) -> str | None:
    """The deployment of a predict request (its path without the app's root path), or
    None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    name = path[len(_PREFIX):-len(_SUFFIX)]
    return name if name and "/" not in name else None


def _headers(scope: Scope) -> dict[bytes, str]:
    # Latin-1, as HTTP headers are: never a decoding error on a hostile byte.
    return {key: value.decode("latin-1") for key, value in scope["headers"]}


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise too_large(size, limit, at_least=True)
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)
