"""The Snowplow tracker protocol doors: `POST /com.snowplowanalytics.snowplow/tp2`, `GET /i`.

Trackers only look at the status code, and retry on anything but 2xx; a rejected event
is stored in bad rows, so it is answered 200 like the rest (a retry could not fix it).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

import anyio.to_thread
import msgspec
from fastapi import APIRouter, Request, Response
from fastapi.params import Depends
from fastapi.responses import JSONResponse

from flywheel._core.clock import utc_now_us
from flywheel._core.errors import LogUnavailableError
from flywheel._core.ids import new_ids
from flywheel.ingest.collector import (
    ERROR_RESPONSES,
    JSON_SPACE,
    EmptyBodyError,
    IngestResponse,
    IngestTarget,
    ingest_response,
    read_body,
)
from flywheel.ingest.result import MAX_LISTED_ERRORS, IngestError, IngestResult
from flywheel.ingest.snowplow import (
    NotPayloadDataError,
    Rejection,
    decode_params,
    split_payload_data,
    to_event,
)
from flywheel.log.badrows import BadRow, bad_rows_table

__all__ = ["DOOR", "PIXEL", "ingest_tracker_events", "snowplow_router", "store_bad_rows"]

DOOR = "snowplow"
TP2_PATH = "/com.snowplowanalytics.snowplow/tp2"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF, the answer trackers expect from `GET /i`."""
_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate"}
_encode = msgspec.json.Encoder().encode
log = logging.getLogger("flywheel.ingest")


def ingest_tracker_events(target: IngestTarget, raws: Sequence[bytes]) -> IngestResult:
    """Convert and store tracker events (each raw is one parameter map as JSON).

    Converted events go through the ingestor; events that cannot be converted are stored
    in bad rows here, after the events' commit, so that a client retry after a failure
    finds the events already stored (deduplicated by `eid`) and adds no second bad row."""
    items: list[dict[str, object]] = []
    chunks: list[bytes] = []
    positions: list[int] = []
    rejected: list[BadRow] = []
    for index, raw in enumerate(raws):
        params = decode_params(raw)
        event = params if isinstance(params, Rejection) else to_event(params)
        if isinstance(event, Rejection):
            rejected.append(BadRow(index, event.reason, event.message, raw, event.schema))
        else:
            items.append(event)
            chunks.append(raw)
            positions.append(index)
    result = IngestResult()
    errors: list[IngestError] = []
    if items:
        part = target.ingestor.ingest_raw(chunks, items, door=DOOR)
        result.accepted, result.duplicates, result.offsets = (part.accepted, part.duplicates,
                                                              part.offsets)
        result.rejected = part.rejected
        result.errors_omitted = part.errors_omitted
        errors = [IngestError(positions[e.index], e.reason, e.message, e.errors)
                  for e in part.errors]
    if rejected:
        store_bad_rows(target, rejected, DOOR)
        result.rejected += len(rejected)
        errors.extend(IngestError(b.index, b.reason, b.message) for b in rejected)
    errors.sort(key=lambda e: e.index)
    result.errors = errors[:MAX_LISTED_ERRORS]
    result.errors_omitted += len(errors) - len(result.errors)
    return result


def store_bad_rows(target: IngestTarget, rows: list[BadRow], door: str) -> None:
    """Durably store bad rows whose reason the Preparer cannot give (unsupported_event,
    tracker-level errors). A commit of its own, under the log's writer lock."""
    store = target.log_store
    table = bad_rows_table(rows, new_ids(len(rows)), door, utc_now_us())
    try:
        with store.lock:
            store.append_bad_rows(table)
    except Exception as exc:
        log.exception("bad rows commit failed; %d tracker event(s) not acknowledged", len(rows))
        raise LogUnavailableError(f"the log could not commit: {exc}".splitlines()[0],
                                  hint="nothing in this request was acknowledged; retry it"
                                  ) from exc
    target.alarm.observe(len(rows), len(rows))


def ingest_post(target: IngestTarget, body: bytes) -> tuple[IngestResult, str | None]:
    """A tp2 body: the result and, when the body is not a payload_data JSON, why."""
    if not body.strip(JSON_SPACE):
        raise EmptyBodyError("the request body is empty",
                             hint="trackers send a payload_data JSON with the events")
    try:
        raws = split_payload_data(body)
    except NotPayloadDataError as exc:
        store_bad_rows(target, [BadRow(0, exc.reason, exc.message, body)], DOOR)
        result = IngestResult(rejected=1, errors=[IngestError(0, exc.reason, exc.message)])
        return result, f"{exc.one_line()}; the body is kept in bad rows"
    return ingest_tracker_events(target, raws), None


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
        result, problem = await anyio.to_thread.run_sync(ingest_post, target, body)
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
            await anyio.to_thread.run_sync(ingest_tracker_events, target, [_encode(params)])
        return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)

    return router
