"""The collector door: `POST /v1/events` (a JSON array of events, or NDJSON), and the
answer every ingesting route gives: the counts of what was stored.

The route reads the body, splits it (`ingest.body`) and hands it to the ingestor's one
path (`Ingestor.ingest_async`), which answers once the events are durable; the event loop
stays free for other requests meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from flywheel.api.body import check_media_type, read_body
from flywheel.api.errors import ERROR_RESPONSES, ErrorResponse
from flywheel.ingest.body import split_body
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.result import IngestResult

__all__ = ["ANY_EVENT", "DOOR", "ErrorItem", "IngestResponse", "events_body", "events_router",
           "ingest_response", "responses"]

DOOR = "http"


class ErrorItem(BaseModel):
    index: int
    reason: str
    kind: str
    errors: list[dict[str, str]]


class IngestResponse(BaseModel):
    """Counts add up: accepted + rejected + duplicates = events received."""

    accepted: int
    rejected: int
    duplicates: int
    errors: list[ErrorItem]
    errors_omitted: int
    offsets: dict[str, int]
    detail: str | None = None


def ingest_response(result: IngestResult, *, all_rejected_status: int = 400) -> JSONResponse:
    """The counts; `all_rejected_status` when every event was rejected."""
    content = result.as_dict()
    status = 200
    if result.rejected and not (result.accepted or result.duplicates):
        status = all_rejected_status
        content["detail"] = (f"all {result.rejected} event(s) were rejected; they are kept in "
                             "bad rows with the reasons listed in `errors`")
    return JSONResponse(content, status_code=status)


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 1}}}


def responses(descriptions: Mapping[int | str, str], *, ingest_result: Sequence[int] = (),
              ) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: `IngestResponse` for the statuses in `ingest_result` (an error
    status there may also be a plain `ErrorResponse`), `ErrorResponse` for other errors."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status, text in descriptions.items():
        model: Any = ErrorResponse
        if status in ingest_result:
            model = IngestResponse if int(status) < 400 else IngestResponse | ErrorResponse
        entry: dict[str, Any] = {"model": model, "description": text}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        documented[status] = entry
    return documented


def events_body(event_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of `POST /v1/events`, each element one `event_schema`."""
    events = {"type": "array", "items": dict(event_schema)}
    return {"required": True, "content": {
        "application/json": {"schema": {**events, "title": "Events",
                                        "description": "A JSON array of events"}},
        # An NDJSON body without a line is empty, and an empty body is refused (400).
        "application/x-ndjson": {"schema": {**events, "minItems": 1, "title": "EventLines",
                                            "description": "The same events as NDJSON, one "
                                            "per line (blank lines are skipped)"}},
    }}


ANY_EVENT: dict[str, Any] = {
    "title": "Event", "type": "object", "required": ["schema", "data"],
    "additionalProperties": False,
    "properties": {"schema": {"type": "string"}, "data": {"type": "object"},
                   "event_id": {"type": "string"},
                   "event_time": {"type": "string", "format": "date-time"}}}
"""The event envelope, whatever the registered schemas (the app documents those)."""


def events_router(ingestor: Callable[[], Ingestor], max_request_bytes: int,
                  dependencies: Sequence[Depends] = ()) -> APIRouter:
    """`POST /v1/events`; `dependencies` (say, a token check) run before the body is read.
    `ingestor` is called per request: the project's stores open on first use, not here."""
    router = APIRouter(tags=["ingest"])

    @router.post(
        "/v1/events", summary="Ingest events (JSON array or NDJSON)",
        response_model=None, dependencies=list(dependencies),
        responses=responses({
            200: "Events stored (some may have been rejected into bad rows)",
            400: "Every event was rejected (all are kept in bad rows), or the body was empty",
            415: "The body is declared as something other than JSON or NDJSON",
            **ERROR_RESPONSES}, ingest_result=(200, 400)),
        openapi_extra={"requestBody": events_body(ANY_EVENT)},
    )
    async def post_events(request: Request) -> JSONResponse:
        """Validate and durably store events. Each element of the array (or each non-blank
        line) is one event `{schema, data, event_id?, event_time?}`. The answer comes once
        the events are durable; re-sending events with the same `event_id` is safe."""
        check_media_type(request.headers.get("content-type"))
        body = await read_body(request, max_request_bytes)
        result = await ingestor().ingest_async(split_body(body), door=DOOR)
        return ingest_response(result)

    return router
