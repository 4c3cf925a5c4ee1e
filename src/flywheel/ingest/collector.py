"""The HTTP collector door: `POST /v1/events` (a JSON array of events, or NDJSON).

Each event's bytes are kept exactly as received, so a rejected event is stored in bad
rows as the client sent it. The route waits for the group commit in a worker thread;
the event loop stays free for other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio.to_thread
import msgspec
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from flywheel._core.errors import FlywheelError, InputError
from flywheel.ingest.alerts import BadRowsAlarm
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.prepare import decode_json_items
from flywheel.ingest.result import IngestResult
from flywheel.log.store import LogStore

__all__ = [
    "ERROR_RESPONSES",
    "EmptyBodyError",
    "ErrorResponse",
    "IngestResponse",
    "IngestTarget",
    "RequestTooLargeError",
    "UnsupportedMediaTypeError",
    "check_media_type",
    "collector_router",
    "error_response",
    "ingest_chunks",
    "ingest_items",
    "ingest_response",
    "read_body",
    "responses",
    "split_body",
]

JSON_SPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_decode_raw_array = msgspec.json.Decoder(list[msgspec.Raw]).decode
DOOR = "http"


class IngestTarget(Protocol):
    """What the ingestion doors need from a project (`Project` provides all three)."""

    @property
    def ingestor(self) -> Ingestor: ...

    @property
    def log_store(self) -> LogStore: ...

    @property
    def alarm(self) -> BadRowsAlarm: ...


class RequestTooLargeError(InputError):
    """The request body is over `server.max_request_bytes`."""

    http_status = 413


class UnsupportedMediaTypeError(InputError):
    """The body is declared as something other than JSON or NDJSON."""

    http_status = 415


JSON_MEDIA_TYPES = frozenset({"application/json", "application/x-ndjson",
                              "application/ndjson", "application/jsonl",
                              "application/x-jsonlines"})


def check_media_type(content_type: str | None) -> None:
    """Refuse a body declared as anything but JSON or NDJSON. This is also what keeps web
    pages out: a browser sends a cross-site `text/plain` or form post without asking
    first, whereas a JSON post needs a CORS preflight, which this server does not grant.
    No Content-Type at all (only non-browser clients send none) is read as JSON."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in JSON_MEDIA_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type {media or content_type!r} is not accepted here",
            hint="send application/json (an array of events) or application/x-ndjson")


class EmptyBodyError(InputError):
    """The request carried no events at all."""


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


class ErrorResponse(BaseModel):
    """The body of every error answer: one line saying what was wrong and what to do."""

    detail: str


def error_response(exc: FlywheelError) -> JSONResponse:
    """The answer to an error a client caused: its status and one line of `detail`."""
    headers = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    elif exc.http_status == 503:
        headers["Retry-After"] = "1"
    return JSONResponse({"detail": exc.one_line()}, status_code=exc.http_status,
                        headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) past `limit` bytes, by header and as streamed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise _too_large(size, limit, at_least=True)
        parts.append(part)
    return b"".join(parts)


def _too_large(size: int, limit: int, at_least: bool = False) -> RequestTooLargeError:
    amount = f"{'more than ' if at_least else ''}{limit if at_least else size} bytes"
    return RequestTooLargeError(f"request body is {amount}; server.max_request_bytes is {limit}",
                                hint="send fewer events per request")


def split_body(body: bytes) -> list[bytes]:
    """Each event's raw bytes: the elements of a JSON array, or the lines of NDJSON.

    A body whose first non-space byte is `[` is an array; if the array itself does not
    parse, the whole body is one (bad) element. Otherwise each line is one element and
    lines holding only JSON whitespace are skipped.
    """
    body = body.removeprefix(_BOM)
    stripped = body.lstrip(JSON_SPACE)
    if not stripped:
        raise EmptyBodyError("the request body is empty",
                             hint="send a JSON array of events or NDJSON, one event per line")
    if stripped[:1] == b"[":
        try:
            return [bytes(raw) for raw in _decode_raw_array(body)]
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            return [body]
    lines = (line.removesuffix(b"\r") for line in body.split(b"\n"))
    return [line for line in lines if line.strip(JSON_SPACE)]


INLINE_EVENTS = 2_000
"""Requests up to this many events are validated on the event loop (cheaper than a thread
hop, and only two threads then contend for the interpreter: the loop and the log writer);
larger ones go to a worker thread so that they cannot stall other requests."""


async def ingest_chunks(ingestor: Ingestor, chunks: Sequence[bytes], door: str) -> IngestResult:
    """Validate, hand to the group commit, and await durability without holding a thread."""
    if len(chunks) <= INLINE_EVENTS:
        return await ingest_items(ingestor, chunks, decode_json_items(chunks), door)
    items = await anyio.to_thread.run_sync(decode_json_items, chunks)
    return await ingest_items(ingestor, chunks, items, door)


async def ingest_items(ingestor: Ingestor, chunks: Sequence[bytes], items: Sequence[Any],
                       door: str) -> IngestResult:
    """`items` parsed from (or judged on) `chunks`: validate, commit, await durability."""
    if not chunks:  # `[]`: nothing to commit
        return IngestResult()
    if len(chunks) <= INLINE_EVENTS:
        pending = ingestor.begin_raw(chunks, items, door=door)
    else:
        pending = await anyio.to_thread.run_sync(
            lambda: ingestor.begin_raw(chunks, items, door=door))
    await asyncio.wrap_future(pending.future)
    return pending.finish()


def ingest_response(result: IngestResult, *, all_rejected_status: int = 400) -> JSONResponse:
    """The counts; `all_rejected_status` when every event was rejected."""
    content = result.as_dict()
    status = 200
    if result.rejected and not (result.accepted or result.duplicates):
        status = all_rejected_status
        content["detail"] = (f"all {result.rejected} event(s) were rejected; they are kept in "
                             "bad rows with the reasons listed in `errors`")
    return JSONResponse(content, status_code=status)


ERROR_RESPONSES: dict[int | str, str] = {
    401: "Missing or invalid bearer token",
    403: "The token lacks the route's scope",
    413: "The body is over server.max_request_bytes",
    503: "The log could not commit (nothing was stored); retry after Retry-After seconds",
}
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


def collector_router(target: IngestTarget, max_request_bytes: int,
                     dependencies: Sequence[Depends] = ()) -> APIRouter:
    """`POST /v1/events`; `dependencies` (say, a token check) run before the body is read."""
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
        result = await ingest_chunks(target.ingestor, split_body(body), DOOR)
        return ingest_response(result)

    return router
