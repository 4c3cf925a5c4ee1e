"""The Open Inference Protocol v2 over REST (KServe's, Triton's and MLServer's data plane):
health, server and model metadata, model readiness and inference, with the protocol's JSON
shapes; a model is a deployment, by name. Errors are `{"error": "<one line>"}` with a 4xx
status, as the protocol says (`flywheel.api.errors` answers so for every `/v2` path).

The optional version segment (`/v2/models/NAME/versions/V/...`) is accepted for a version
the deployment serves now; a deployment of several members answers with any of them, so
only a single-member deployment can be asked for one version's answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import Response

from flywheel import __version__
from flywheel._core.errors import FlywheelError, InputError
from flywheel.api.body import check_media_type, read_body
from flywheel.api.deployments import DeploymentFinder
from flywheel.api.inference import (
    EXTRA_OUTPUTS,
    decode_infer,
    infer_arguments,
    infer_response,
    output_datatype,
)
from flywheel.api.metrics import ServingMetrics

if TYPE_CHECKING:
    from flywheel.features.definitions import FeatureRegistry
    from flywheel.serving import Deployment

__all__ = ["ROUTE", "SERVER_NAME", "InferHandler", "UnknownVersionError", "entity_keys",
           "model_metadata", "oip_router"]

ROUTE = "oip_infer"
"""The `route` label of inference's metrics."""
SERVER_NAME = "flywheel"
_encode = msgspec.json.Encoder().encode
_VERSION = "/versions/{version}"


class UnknownVersionError(InputError):
    """A version segment naming a version the deployment does not serve now."""

    http_status = 404


def _json(content: Any, status: int = 200) -> Response:
    return Response(_encode(content), status_code=status, media_type="application/json")


def entity_keys(deployment: Deployment, features: FeatureRegistry) -> list[str]:
    """The join keys a request may name entities by: the deployment's `entity`, or those
    of the views its members' feature services read."""
    if deployment.spec.entity:
        return [deployment.spec.entity]
    keys: dict[str, None] = {}
    for member in deployment.members:
        service = member.feature_service
        if service is None or service not in features.services:
            continue
        for view in features.plan(service=service).lookups:
            if view in features.views:
                for entity in features.views[view].entities:
                    keys.update(dict.fromkeys(entity.join_keys))
    return list(keys)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What an infer request of a deployment is read and answered by."""

    columns: list[str]
    outputs: list[str]
    entity_keys: list[str]


class _Shapes:
    """The shape of each deployment, worked out again only when a member's version or the
    feature definitions change (an alias moved, definitions reloaded): not per request."""

    def __init__(self, features: Callable[[], FeatureRegistry]) -> None:
        self._features = features
        self._known: dict[str, tuple[tuple[Any, ...], _Shape]] = {}

    def of(self, deployment: Deployment) -> _Shape:
        registry = self._features()
        members = deployment.members
        stamp = (id(registry), tuple((m.model, m.version) for m in members))
        cached = self._known.get(deployment.name)
        if cached is None or cached[0] != stamp:
            shape = _Shape(columns=_columns(deployment), outputs=_outputs(deployment),
                           entity_keys=entity_keys(deployment, registry))
            cached = self._known[deployment.name] = (stamp, shape)
        return cached[1]


def _columns(deployment: Deployment) -> list[str]:
    names: dict[str, None] = {}
    for member in deployment.members:
        names.update(dict.fromkeys(member.inputs))
    return list(names)


def _outputs(deployment: Deployment) -> list[str]:
    names: dict[str, None] = {}
    for member in deployment.members:
        names.update(dict.fromkeys(member.outputs))
    names.update(dict.fromkeys(EXTRA_OUTPUTS))
    return list(names)


def model_metadata(deployment: Deployment, features: FeatureRegistry) -> dict[str, Any]:
    """`$metadata_model_response`: entity keys (BYTES) and feature columns (FP64) as inputs,
    each a column of shape [-1]; the members' outputs and the per-row extras as outputs."""
    versions = sorted({m.version for m in deployment.members})
    inputs = [{"name": key, "datatype": "BYTES", "shape": [-1]}
              for key in entity_keys(deployment, features)]
    inputs += [{"name": column, "datatype": "FP64", "shape": [-1]}
               for column in _columns(deployment)]
    return {"name": deployment.name, "versions": [str(v) for v in versions],
            "platform": f"flywheel_{deployment.spec.policy}", "inputs": inputs,
            "outputs": [{"name": name, "datatype": output_datatype(name), "shape": [-1]}
                        for name in _outputs(deployment)]}


def _check_version(deployment: Deployment, version: str | None) -> None:
    if version is None:
        return
    served = sorted({m.version for m in deployment.members})
    if len(deployment.members) != 1 or [version] != [str(v) for v in served]:
        shown = ", ".join(map(str, served))
        raise UnknownVersionError(
            f"model {deployment.name} does not answer with version {version[:40]!r} alone "
            f"(serving: {shown})", hint=f"use /v2/models/{deployment.name}/infer")


class InferHandler:
    """One inference request, from the model's name (and version segment), the declared
    media type and the body to the encoded answer: shared by the route and by the
    server's ASGI fast path (`flywheel.api.fast_path`)."""

    def __init__(self, *, deployments: DeploymentFinder,
                 features: Callable[[], FeatureRegistry], metrics: ServingMetrics) -> None:
        self._deployments = deployments
        self._metrics = metrics
        self._shapes = _Shapes(features)

    async def answer(self, name: str, version: str | None, content_type: str | None,
                     binary: bool, body: Callable[[], Awaitable[bytes]]) -> bytes:
        """`binary`: the request declared binary tensor data (which is refused)."""
        started = time.perf_counter()
        known: str | None = None
        try:
            check_media_type(content_type)
            if binary:
                raise InputError("binary tensor data is not supported",
                                 hint="send every tensor's elements in `data` (JSON)")
            wanted = decode_infer(await body())
            deployment = await self._deployments.get(name)
            known = name
            _check_version(deployment, version)
            shape = self._shapes.of(deployment)
            arguments = infer_arguments(wanted.inputs, columns=shape.columns,
                                        entity_keys=shape.entity_keys)
            requested = _requested(wanted.outputs, shape.outputs)
            batch = await deployment.predict_async(
                entities=arguments.entities, instances=arguments.instances,
                request_data=arguments.request_data)
        except FlywheelError as exc:
            self._metrics.failed(ROUTE, known, exc.http_status)
            raise
        self._metrics.observe(ROUTE, name, batch, time.perf_counter() - started)
        document = infer_response([row.to_dict() for row in batch.rows], model_name=name,
                                  request_id=wanted.id, requested=requested)
        return _encode(document)


_TAGS: list[str | Enum] = ["open inference protocol"]
_ERROR = {"description": "`{\"error\": \"...\"}`", "content": {"application/json": {
    "schema": {"type": "object", "required": ["error"],
               "properties": {"error": {"type": "string"}}}}}}
_TENSOR: dict[str, Any] = {
    "type": "object", "required": ["name", "shape", "datatype", "data"],
    "properties": {"name": {"type": "string"},
                   "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                   "datatype": {"type": "string", "enum": [
                       "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                       "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
                   "parameters": {"type": "object"},
                   "data": {"type": "array", "description": "row-major, flat or nested"}}}
_INFER_BODY = {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                               "properties": {"name": {"type": "string"},
                                                              "parameters": {"type": "object"}}}}}},
    "example": {"id": "42", "inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES",
                                        "data": ["u1"]}]}}}}


def _documented(ok: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    described: dict[int | str, dict[str, Any]] = {200: {"description": ok}}
    for status in errors:
        described[status] = _ERROR
    return described


def oip_router(deployments: DeploymentFinder, features: Callable[[], FeatureRegistry],
               inferring: InferHandler, max_request_bytes: int,
               dependencies: Sequence[Depends] = ()) -> APIRouter:
    """The protocol's routes; `dependencies` (the `predict` token check) guard all but the
    two health probes, which orchestrators call without credentials. In the server, the
    fast path answers inference before FastAPI routes it; the route is what the OpenAPI
    document describes."""
    router = APIRouter(tags=_TAGS)
    guard = list(dependencies)

    @router.get("/v2/health/live", summary="Server live", response_model=None,
                responses=_documented("`{\"live\": true}`"))
    async def live() -> Response:
        """The server can receive and answer requests."""
        return _json({"live": True})

    @router.get("/v2/health/ready", summary="Server ready", response_model=None,
                responses=_documented("`{\"ready\": true}`: every deployment's models are "
                                      "loaded", 503))
    async def ready() -> Response:
        """Every deployment is ready to score (503 `{"ready": false}` while one is not)."""
        names = await deployments.names()
        for name in names:
            try:
                deployment = await deployments.get(name)
                ok = await anyio.to_thread.run_sync(deployment.ready)
            except FlywheelError:
                ok = False
            if not ok:
                return _json({"ready": False}, 503)
        return _json({"ready": True})

    @router.get("/v2", summary="Server metadata", response_model=None, dependencies=guard,
                responses=_documented("`{name, version, extensions}`", 401, 403))
    async def server_metadata() -> Response:
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": []})

    async def metadata(name: str, version: str | None) -> Response:
        deployment = await deployments.get(name)
        _check_version(deployment, version)
        document = await anyio.to_thread.run_sync(model_metadata, deployment, features())
        return _json(document)

    async def model_ready(name: str, version: str | None) -> Response:
        deployment = await deployments.get(name)
        _check_version(deployment, version)
        ok = await anyio.to_thread.run_sync(deployment.ready)
        return _json({"name": name, "ready": ok}, 200 if ok else 503)

    async def infer(name: str, version: str | None, request: Request) -> Response:
        answer = await inferring.answer(
            name, version, request.headers.get("content-type"),
            "inference-header-content-length" in request.headers,
            lambda: read_body(request, max_request_bytes))
        return Response(answer, media_type="application/json")

    metadata_ok = _documented("`{name, versions, platform, inputs, outputs}`", 401, 403, 404,
                              422)
    ready_ok = _documented("`{name, ready}` (503 when not ready)", 401, 403, 404, 422, 503)
    infer_ok = _documented("`{model_name, model_version?, id?, outputs}`: one tensor of "
                           "shape [N] per output", 400, 401, 403, 404, 413, 415, 422)
    for prefix, tail in (("/v2/models/{name}", ""), ("/v2/models/{name}" + _VERSION, " of a "
                                                     "version")):
        versioned = bool(tail)
        router.add_api_route(prefix, _bind(metadata, versioned), methods=["GET"],
                             summary="Model metadata" + tail, response_model=None,
                             dependencies=guard, responses=metadata_ok)
        router.add_api_route(prefix + "/ready", _bind(model_ready, versioned),
                             methods=["GET"], summary="Model ready" + tail,
                             response_model=None, dependencies=guard, responses=ready_ok)
        router.add_api_route(prefix + "/infer", _bind_infer(infer, versioned),
                             methods=["POST"], summary="Inference" + tail,
                             response_model=None, dependencies=guard, responses=infer_ok,
                             openapi_extra={"requestBody": _INFER_BODY})
    return router


def _requested(outputs: Sequence[Any] | None, known: list[str]) -> list[str] | None:
    if outputs is None:
        return None
    names = [o.name for o in outputs]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown output(s) {', '.join(map(repr, unknown))}",
                         hint=f"the outputs are {', '.join(known)}")
    return list(dict.fromkeys(names))


def _bind(handler: Callable[[str, str | None], Any], versioned: bool) -> Callable[..., Any]:
    if versioned:
        async def with_version(name: str, version: str) -> Response:
            result: Response = await handler(name, version)
            return result

        return with_version

    async def without_version(name: str) -> Response:
        result: Response = await handler(name, None)
        return result

    return without_version


def _bind_infer(handler: Callable[[str, str | None, Request], Any], versioned: bool,
                ) -> Callable[..., Any]:
    if versioned:
        async def infer_version(name: str, version: str, request: Request) -> Response:
            result: Response = await handler(name, version, request)
            return result

        return infer_version

    async def infer_model(name: str, request: Request) -> Response:
        result: Response = await handler(name, None, request)
        return result

    return infer_model
