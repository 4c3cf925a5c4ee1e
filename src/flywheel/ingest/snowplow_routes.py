"""The Snowplow tracker protocol doors: `POST /com.snowplowanalytics.snowplow/tp2`, `GET /i`.

Trackers only look at the status code, and retry on anything but 2xx; a rejected event
is stored in bad rows, so it is answered 200 like the rest (a retry could not fix it).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

import msgspec
from fastapi import APIRouter, Request, Response
from fastapi.params import Depends
from fastapi.responses import JSONResponse

from flywheel.ingest.collector import (
    ERROR_RESPONSES,
    JSON_SPACE,
    EmptyBodyError,
    IngestResponse,
    IngestTarget,
    ingest_items,
    ingest_response,
    read_body,
)
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.prepare import Rejected
from flywheel.ingest.result import IngestResult
from flywheel.ingest.snowplow import (
    NotPayloadDataError,
    Rejection,
    decode_params,
    split_payload_data,
    to_tracked,
)

__all__ = ["DOOR", "PIXEL", "ingest_tracker_events", "snowplow_router", "tracker_items"]

DOOR = "snowplow"
TP2_PATH = "/com.snowplowanalytics.snowplow/tp2"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF, the answer trackers expect from `GET /i`."""
_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate"}
_encode = msgspec.json.Encoder().encode
log = logging.getLogger("flywheel.ingest")


def tracker_items(raws: Sequence[bytes], useragent: str | None = None) -> list[object]:
    """Each raw parameter map as a tracked Flywheel event, or as `Rejected` with the
    reason; `useragent` (the request's header) stands in for a missing `ua`."""
    items: list[object] = []
    for raw in raws:
        params = decode_params(raw)
        event = params if isinstance(params, Rejection) else to_tracked(params, useragent)
        if isinstance(event, Rejection):
            items.append(Rejected(event.reason, event.message, event.schema))
        else:
            items.append(event)
    return items


async def ingest_tracker_events(ingestor: Ingestor, raws: Sequence[bytes],
                                useragent: str | None = None) -> IngestResult:
    """Convert and store tracker events (each raw is one parameter map as JSON); events
    that cannot be converted become bad rows in the same group commit."""
    return await ingest_items(ingestor, raws, tracker_items(raws, useragent), DOOR)


async def ingest_post(ingestor: Ingestor, body: bytes, useragent: str | None = None,
                      ) -> tuple[IngestResult, str | None]:
    """A tp2 body: the result and, when the body is not a payload_data JSON, why."""
    if not body.strip(JSON_SPACE):
        raise EmptyBodyError("the request body is empty",
                             hint="trackers send a payload_data JSON with the events")
    try:
        raws = split_payload_data(body)
    except NotPayloadDataError as exc:
        result = await ingest_items(ingestor, [body], [Rejected(exc.reason, exc.message)], DOOR)
        return result, f"{exc.one_line()}; the body is kept in bad rows"
    return await ingest_tracker_events(ingestor, raws, useragent), None


def _allow_origin(request: Request, response: Response) -> Response:
    """Browser trackers post across origins, with credentials (the collector's cookie)."""
    origin = request.headers.get("origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response


def snowplow_router(target: IngestTarget, max_request_bytes: int,
                    dependencies: Sequence[Depends] = ()) -> APIRouter:
    """The tracker protocol routes; `dependencies` (a token check) guard the event routes."""
    router = APIRouter(tags=["snowplow"])
    guard = list(dependencies)

    @router.post(
        TP2_PATH, summary="Snowplow tracker protocol: POST a payload_data batch",
        response_model=None, dependencies=guard,
        responses={200: {"model": IngestResponse, "description": "Events stored; those that "
                         "could not be (not self-describing, invalid) are in bad rows"},
                   400: {"model": IngestResponse, "description": "The body is not a "
                         "payload_data JSON (it is kept in bad rows), or it is empty"},
                   **ERROR_RESPONSES},
    )
    async def post_tp2(request: Request) -> Response:
        """The body Snowplow trackers POST: `{"schema": "iglu:com.snowplowanalytics.snowplow/
        payload_data/jsonschema/1-0-4", "data": [{tracker parameters}, ...]}`. Each
        self-describing event (`e=ue`) becomes a Flywheel event of its inner schema."""
        body = await read_body(request, max_request_bytes)
        result, problem = await ingest_post(target.ingestor, body,
                                            request.headers.get("user-agent"))
        if problem is None:
            response = ingest_response(result, all_rejected_status=200)
        else:
            response = JSONResponse({**result.as_dict(), "detail": problem}, status_code=400)
        return _allow_origin(request, response)

    @router.options(TP2_PATH, include_in_schema=False)
    async def preflight_tp2(request: Request) -> Response:
        response = Response(status_code=200, headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get(
                "access-control-request-headers", "Content-Type"),
            "Access-Control-Max-Age": "600",
        })
        return _allow_origin(request, response)

    @router.get(
        "/i", summary="Snowplow tracker protocol: GET one event (pixel)",
        response_class=Response, dependencies=guard,
        responses={200: {"content": {"image/gif": {}}, "description": "A 1x1 transparent "
                         "GIF; the event is stored (or kept in bad rows)"}, **ERROR_RESPONSES},
    )
    async def get_pixel(request: Request) -> Response:
        """One tracker event in the query string (`e=ue&eid=...&ue_px=...`). Answered with
        a transparent pixel. A request without parameters carries no event and stores
        nothing."""
        params = dict(request.query_params)
        if params:
            await ingest_tracker_events(target.ingestor, [_encode(params)],
                                        request.headers.get("user-agent"))
        return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)

    return router
