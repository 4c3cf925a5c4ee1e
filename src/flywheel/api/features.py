"""Online feature serving: `POST /v1/features/online`.

A latency-critical path. The body is decoded and checked with msgspec (no pydantic model
per request). With the SQLite online store the read is called directly on the event loop:
it is a local read of well under a millisecond, cheaper than a hop to a worker thread.
A networked store (Redis) may wait on the network, so it is read in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import Response
from pydantic import BaseModel

from flywheel._core.errors import InputError
from flywheel.api.body import decode_json, read_body
from flywheel.api.errors import ErrorResponse
from flywheel.features.online import OnlineFeatures

if TYPE_CHECKING:
    from flywheel.project import Project

__all__ = ["FeatureRequestError", "OnlineRequest", "OnlineResponse", "Scalar", "decode_request",
           "features_router"]

Scalar = str | int | float | bool | None


class OnlineRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`entities` ({join key: [values]}), and either `features` or `feature_service`."""

    entities: dict[str, list[Scalar]]
    features: list[str] | None = None
    feature_service: str | None = None
    request_data: dict[str, list[Scalar]] | None = None
    """Fields that come with the request, one value per entity (on-demand views read them)."""


class FeatureRequestError(InputError):
    """The body is JSON, but not a feature request."""

    http_status = 422


class OnlineResponse(BaseModel):
    """Documentation only: the answer is encoded with msgspec."""

    features: dict[str, list[Any]]
    found: dict[str, list[bool]]


_decode = msgspec.json.Decoder(OnlineRequest).decode
_encode = msgspec.json.Encoder().encode

_BODY = {
    "required": True,
    "content": {"application/json": {
        "schema": {
            "type": "object", "required": ["entities"], "additionalProperties": False,
            "oneOf": [{"required": ["features"]}, {"required": ["feature_service"]}],
            "properties": {
                "entities": {"type": "object", "description": "join key -> values, one per "
                             "entity; every list has the same length", "minProperties": 1,
                             "additionalProperties": {"type": "array", "items": {}}},
                "features": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                             "description": "`view:feature` (or `view:*`) references"},
                "feature_service": {"type": "string"},
                "request_data": {"type": "object", "description": "request field -> values, "
                                 "one per entity, for on-demand views",
                                 "additionalProperties": {"type": "array", "items": {}}}}},
        "example": {"entities": {"user_id": ["u1", "u2"]},
                    "features": ["visits:pages", "visits:seconds"]}}},
}


def decode_request(body: bytes) -> OnlineRequest:
    """The request, or a one-line 400 (not JSON) / 422 (not the expected shape)."""
    request = decode_json(_decode, body, invalid="invalid request", error=FeatureRequestError,
                          hint="send {\"entities\": {...}, \"features\": [...]}")
    if not request.entities:
        raise FeatureRequestError("`entities` names no join key",
                                  hint='send e.g. {"entities": {"user_id": ["u1"]}}')
    if (request.features is None) == (request.feature_service is None):
        raise FeatureRequestError("send either `features` or `feature_service`, not both "
                                  "or neither")
    if request.features is not None and not request.features:
        raise FeatureRequestError("`features` is empty", hint="list view:feature references")
    return request


def features_router(project: Project, max_request_bytes: int,
                    dependencies: Sequence[Depends] = ()) -> APIRouter:
    """`POST /v1/features/online`; `dependencies` (the `read` token check) run first.
    The project's feature store and online store are opened on first use, not here."""
    router = APIRouter(tags=["features"])
    project.features.reload_on_change()  # a long-running server picks up edited definitions
    local: list[bool] = []  # decided on the first request: is the online store a file?

    def read(wanted: OnlineRequest) -> OnlineFeatures:
        return project.features.get_online_features(
            entities=wanted.entities, features=wanted.features,
            request_data=wanted.request_data,
            feature_service=wanted.feature_service)

    @router.post(
        "/v1/features/online", summary="Read the latest feature values of entities",
        response_model=None, dependencies=list(dependencies),
        responses={200: {"model": OnlineResponse, "description": "One column per join key "
                         "and feature; `found` says, per view, which entities had a live value"},
                   400: {"model": ErrorResponse, "description": "Unknown feature, view or "
                         "service; entity lists of different lengths; a missing join key"},
                   401: {"model": ErrorResponse, "description": "Missing or invalid token"},
                   403: {"model": ErrorResponse, "description": "The token lacks `read`"},
                   413: {"model": ErrorResponse, "description": "Body over the limit"},
                   422: {"model": ErrorResponse, "description": "Not a feature request"}},
        openapi_extra={"requestBody": _BODY},
    )
    async def online_features(request: Request) -> Response:
        """The latest values for the entities, every view in one online-store round trip.
        Unknown entities (or values past the view's TTL) give `null`, with `found` false."""
        wanted = decode_request(await read_body(request, max_request_bytes))
        if not local:
            local.append(project.online.url.startswith("sqlite:"))
        if local[0]:  # on the loop on purpose: a local, sub-millisecond read
            result = read(wanted)
        else:
            result = await anyio.to_thread.run_sync(read, wanted)
        return Response(_encode({"features": result.columns, "found": result.found}),
                        media_type="application/json")

    return router
