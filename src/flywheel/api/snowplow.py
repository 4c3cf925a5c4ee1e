"""The Snowplow tracker protocol doors: `POST /com.snowplowanalytics.snowplow/tp2`, `GET /i`,
and the same under a publishable key: `/k/<key>/com.snowplowanalytics.snowplow/tp2`, `/k/<key>/i`.

Trackers only look at the status code, and retry on anything but 2xx except 400, 401,
403, 410 and 422; a rejected event is stored in bad rows, so it is answered 200 like the
rest (a retry could not fix it). A request a publishable key does not allow is answered
403 (not retried) or 429 (retried later) and nothing of it is stored (see `ingest.keys`).

The protocol itself (tp2 bodies, pixel queries, tracker events) is `ingest.snowplow`;
these routes read the request, check the key, and call the ingestor's one path.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.params import Depends
from fastapi.responses import JSONResponse

from flywheel._core.errors import AuthError, FlywheelError
from flywheel._core.metadata.tokens import TokenRecord
from flywheel.api.body import read_body
from flywheel.api.errors import ERROR_RESPONSES, error_response
from flywheel.api.events import ingest_response, responses
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.keys import KEY_PATTERN, RateLimiter, check_app_ids, check_origin
from flywheel.ingest.snowplow import (
    DOOR,
    PAYLOAD_DATA_PREFIX,
    items_from_params,
    keyed_tp2_params,
    pixel_event,
    tp2_batch,
    tracker_items,
)

__all__ = ["PAYLOAD_DATA_PATTERN", "PIXEL", "TP2_PATH", "TRACKER_PARAMETERS", "KeyResolver",
           "keyed_router", "snowplow_router"]

TP2_PATH = "/com.snowplowanalytics.snowplow/tp2"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF, the answer trackers expect from `GET /i`."""
_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate"}
KeyResolver = Callable[[str], Awaitable[TokenRecord | None]]
"""A publishable key -> its record (None: unknown, revoked or not a publishable key)."""


def _cors(origin: str | None, response: Response) -> Response:
    """Browser trackers post across origins, with credentials (the collector's cookie)."""
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response


def _preflight(request: Request, origin: str | None) -> Response:
    response = Response(status_code=200, headers={
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get(
            "access-control-request-headers", "Content-Type"),
        "Access-Control-Max-Age": "600",
    })
    return _cors(origin, response)


# OpenAPI: what the trackers send ------------------------------------------------------
TRACKER_PARAMETERS: Mapping[str, str] = {
    "e": "event type; only `ue` (self-describing) events are stored in the log, others in "
         "bad rows",
    "eid": "event id (a UUID); re-sending an event with the same id stores it once",
    "aid": "app id (the tracker's appId); a publishable key allows only the ids it lists",
    "p": "platform: web, mob, pc, srv, app, tv, cnsl, iot or headset",
    "tv": "tracker version", "tna": "tracker namespace",
    "dtm": "device created timestamp, milliseconds since the epoch",
    "stm": "device sent timestamp, milliseconds since the epoch",
    "ttm": "true timestamp, milliseconds since the epoch (the event time when given)",
    "ue_pr": "the self-describing event as JSON: {\"schema\": \"iglu:com.snowplowanalytics."
             "snowplow/unstruct_event/jsonschema/1-0-0\", \"data\": {\"schema\": ..., "
             "\"data\": {...}}}",
    "ue_px": "the same as ue_pr, base64url-encoded",
    "ua": "user agent (else the request's User-Agent header)",
}
PAYLOAD_DATA_PATTERN = r"^iglu:com\.snowplowanalytics\.snowplow/payload_data/jsonschema/1-0-[0-9]+$"


def _tracker_event_schema(keyed: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "title": "TrackerEvent",
        "description": "One tracker event: its parameters (all strings, as trackers send them; "
                       "others are accepted as they are)." + (
                           " `aid` must be one of the key's app ids." if keyed else
                           " An element that is not such an object is kept in bad rows."),
        "properties": {name: {"description": text} for name, text in TRACKER_PARAMETERS.items()},
    }
    if keyed:
        schema.update(type="object", required=["aid"])
        schema["properties"]["aid"] = {"type": "string", "description": TRACKER_PARAMETERS["aid"]}
    return schema


def _tp2_body(keyed: bool) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {
        "title": "PayloadData", "type": "object", "required": ["schema", "data"],
        "description": "Snowplow's payload_data self-describing JSON, as trackers POST it.",
        "properties": {
            "schema": {"type": "string", "pattern": PAYLOAD_DATA_PATTERN,
                       "example": PAYLOAD_DATA_PREFIX + "4"},
            "data": {"type": "array", "items": _tracker_event_schema(keyed)}}}}}}


def _pixel_parameters(keyed: bool) -> list[dict[str, Any]]:
    parameters = [{"name": name, "in": "query", "required": keyed and name == "aid",
                   "description": text, "schema": {"type": "string"}}
                  for name, text in TRACKER_PARAMETERS.items()]
    if keyed:
        parameters.insert(0, _KEY_PARAMETER)
    return parameters


_KEY_PARAMETER = {"name": "key", "in": "path", "required": True,
                  "description": "A publishable key (`flywheel token create NAME --publishable "
                                 "--app-id ID`)",
                  "schema": {"type": "string", "pattern": KEY_PATTERN}}
_PIXEL_200 = {"content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
              "description": "A 1x1 transparent GIF; the event is stored (or kept in bad rows), "
                             "or there was none (no parameters)"}
_TP2_200 = ("Events stored; those that could not be (not self-describing, invalid) are in "
            "bad rows")
_KEYED_ERRORS: dict[int | str, str] = {
    400: "The body is not a payload_data JSON, or it is empty; nothing was stored",
    401: "Unknown or revoked publishable key",
    403: "The key does not allow the request's origin or an event's app id; nothing was "
         "stored",
    413: "The body is over server.max_request_bytes",
    429: "The key is over its rate (per server process); nothing was stored; see "
         "Retry-After",
}


def snowplow_router(ingestor: Callable[[], Ingestor], max_request_bytes: int,
                    dependencies: Sequence[Depends] = ()) -> APIRouter:
    """The tracker protocol routes; `dependencies` (a token check) guard the event routes.
    `ingestor` is called per request: the project's stores open on first use, not here."""
    router = APIRouter(tags=["snowplow"])
    guard = list(dependencies)

    @router.post(
        TP2_PATH, summary="Snowplow tracker protocol: POST a payload_data batch",
        response_model=None, dependencies=guard,
        responses=responses({200: _TP2_200, 400: "The body is not a payload_data JSON (it is "
                             "kept in bad rows), or it is empty", **ERROR_RESPONSES},
                            ingest_result=(200, 400)),
        openapi_extra={"requestBody": _tp2_body(keyed=False)},
    )
    async def post_tp2(request: Request) -> Response:
        """The body Snowplow trackers POST: `{"schema": "iglu:com.snowplowanalytics.snowplow/
        payload_data/jsonschema/1-0-4", "data": [{tracker parameters}, ...]}`. Each
        self-describing event (`e=ue`) becomes a Flywheel event of its inner schema."""
        body = await read_body(request, max_request_bytes)
        raws, decode, problem = tp2_batch(body, request.headers.get("user-agent"))
        result = await ingestor().ingest_async(raws, door=DOOR, decode=decode)
        if problem is None:
            response = ingest_response(result, all_rejected_status=200)
        else:
            response = JSONResponse({**result.as_dict(), "detail": problem}, status_code=400)
        return _cors(request.headers.get("origin"), response)

    @router.options(TP2_PATH, include_in_schema=False)
    async def preflight_tp2(request: Request) -> Response:
        return _preflight(request, request.headers.get("origin"))

    @router.get(
        "/i", summary="Snowplow tracker protocol: GET one event (pixel)",
        response_class=Response, dependencies=guard,
        responses={200: _PIXEL_200, **responses(ERROR_RESPONSES)},
        openapi_extra={"parameters": _pixel_parameters(keyed=False)},
    )
    async def get_pixel(request: Request) -> Response:
        """One tracker event in the query string (`e=ue&eid=...&ue_px=...`). Answered with
        a transparent pixel. A request without parameters carries no event and stores
        nothing."""
        if request.query_params:
            await ingestor().ingest_async(pixel_event(request.query_params), door=DOOR,
                                          decode=_trackers(request))
        return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)

    return router


def _trackers(request: Request) -> Callable[[Sequence[bytes]], list[object]]:
    """Tracker events, with the request's User-Agent for those that send no `ua`."""
    useragent = request.headers.get("user-agent")
    return lambda raws: tracker_items(raws, useragent)


class _KeyedRequest:
    """What a keyed route has learnt of its request: the key and the origin to answer CORS
    for (the request's, once the key allows it)."""

    def __init__(self, record: TokenRecord | None = None, origin: str | None = None) -> None:
        self.record = record
        self.origin = origin


def keyed_router(ingestor: Callable[[], Ingestor], max_request_bytes: int, resolve: KeyResolver,
                 limiter: RateLimiter) -> APIRouter:
    """The tracker doors under `/k/<key>/`, for trackers that cannot send a bearer token.
    They check the key whatever the bind address: its limits are the key's, not the server's."""
    router = APIRouter(prefix="/k/{key}", tags=["snowplow"])

    async def admit(request: Request, seen: _KeyedRequest) -> TokenRecord:
        record = await resolve(request.path_params["key"])
        if record is None:
            raise AuthError("unknown or revoked publishable key",
                            hint="`flywheel token list` shows the project's keys")
        seen.record = record
        seen.origin = check_origin(record, request.headers.get("origin"))
        limiter.check(record)
        return record

    async def answer(request: Request,
                     handle: Callable[[_KeyedRequest], Awaitable[Response]]) -> Response:
        seen = _KeyedRequest()
        try:
            response = await handle(seen)
        except FlywheelError as exc:  # answered here so that a listed origin can read it
            response = error_response(exc)
        return _cors(seen.origin, response)

    @router.post(
        TP2_PATH, summary="Snowplow tracker protocol under a publishable key: POST a batch",
        response_model=None,
        responses=responses({200: _TP2_200, **_KEYED_ERRORS}, ingest_result=(200,)),
        openapi_extra={"requestBody": _tp2_body(keyed=True), "parameters": [_KEY_PARAMETER]},
    )
    async def post_keyed_tp2(request: Request) -> Response:
        """As `POST /com.snowplowanalytics.snowplow/tp2`, for trackers whose endpoint is
        `https://<host>/k/<key>`. Every event must carry an app id (`aid`) the key lists,
        the request's Origin (when sent) must be one the key lists, and the key's rate
        applies; a request that breaks one is refused whole and nothing of it is stored."""
        async def handle(seen: _KeyedRequest) -> Response:
            record = await admit(request, seen)
            raws, decoded = keyed_tp2_params(await read_body(request, max_request_bytes))
            check_app_ids(record, decoded)
            limiter.take(record, len(decoded))
            useragent = request.headers.get("user-agent")
            result = await ingestor().ingest_async(
                raws, door=DOOR, decode=lambda _: items_from_params(decoded, useragent))
            return ingest_response(result, all_rejected_status=200)

        return await answer(request, handle)

    @router.options(TP2_PATH, include_in_schema=False)
    async def preflight_keyed_tp2(request: Request) -> Response:
        async def handle(seen: _KeyedRequest) -> Response:
            record = await resolve(request.path_params["key"])
            if record is None:
                raise AuthError("unknown or revoked publishable key")
            seen.origin = check_origin(record, request.headers.get("origin"))
            return _preflight(request, None)

        return await answer(request, handle)

    @router.get(
        "/i", summary="Snowplow tracker protocol under a publishable key: GET one event",
        response_class=Response,
        responses={200: _PIXEL_200, **responses(_KEYED_ERRORS)},
        openapi_extra={"parameters": _pixel_parameters(keyed=True)},
    )
    async def get_keyed_pixel(request: Request) -> Response:
        """As `GET /i`, for trackers whose endpoint is `https://<host>/k/<key>`; the event's
        `aid` must be one the key lists (the request is refused, 403, otherwise)."""
        async def handle(seen: _KeyedRequest) -> Response:
            record = await admit(request, seen)
            params = dict(request.query_params)
            if params:
                check_app_ids(record, [params])
                limiter.take(record, 1)
                await ingestor().ingest_async(pixel_event(params), door=DOOR,
                                              decode=_trackers(request))
            return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)

        return await answer(request, handle)

    return router
