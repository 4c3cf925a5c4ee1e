"""Outcomes of predictions: `POST /v1/feedback` `{prediction_id, outcome, time?}`.

The prediction must be known (in the log, or still on its way there from this process);
the feedback is an event of the log, stored before the answer is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio.to_thread
import msgspec
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import Response
from pydantic import BaseModel

from flywheel._core.errors import InputError
from flywheel.api.body import check_media_type, decode_json, read_body
from flywheel.api.errors import ERROR_RESPONSES
from flywheel.api.events import responses
from flywheel.api.metrics import ServingMetrics

if TYPE_CHECKING:
    from flywheel.serving import Deployments

__all__ = ["FeedbackRequest", "FeedbackResponse", "decode_feedback", "feedback_router"]

_MAX_ID = 200


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    prediction_id: str
    outcome: float
    time: str | None = None


class FeedbackResponse(BaseModel):
    prediction_id: str
    stored: bool


_decode = msgspec.json.Decoder(FeedbackRequest).decode
_encode = msgspec.json.Encoder().encode
_BODY = {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["prediction_id", "outcome"],
               "additionalProperties": False, "properties": {
                   "prediction_id": {"type": "string", "minLength": 1, "maxLength": _MAX_ID,
                                     "description": "as a prediction answered it"},
                   "outcome": {"type": "number", "description": "1/0 (success), a reward, "
                               "or a regression target"},
                   "time": {"type": "string", "format": "date-time", "description": "when "
                            "the outcome happened (RFC 3339 with an offset); default: now"}}},
    "example": {"prediction_id": "01J0000000000000000000000", "outcome": 1}}}}


def decode_feedback(body: bytes) -> FeedbackRequest:
    """The request, or a one-line 400."""
    request = decode_json(_decode, body, invalid="invalid feedback",
                          hint='send {"prediction_id": "...", "outcome": 1}')
    if not request.prediction_id.strip() or len(request.prediction_id) > _MAX_ID:
        raise InputError("prediction_id must be the id a prediction answered")
    if request.outcome != request.outcome or request.outcome in (float("inf"), float("-inf")):
        raise InputError("outcome must be a finite number")
    return request


def feedback_router(deployments: Callable[[], Deployments], metrics: ServingMetrics,
                    max_request_bytes: int, dependencies: Sequence[Depends] = ()) -> APIRouter:
    """`POST /v1/feedback`; `dependencies` (the `feedback` token check) run first."""
    router = APIRouter(tags=["models"])

    @router.post(
        "/v1/feedback", summary="Record the outcome of a prediction", response_model=None,
        dependencies=list(dependencies),
        responses={200: {"model": FeedbackResponse, "description": "Stored in the log"},
                   **responses({400: "Not a feedback request (or a bad time)",
                                404: "No prediction with this id",
                                415: "The body is declared as something other than JSON",
                                **ERROR_RESPONSES})},
        openapi_extra={"requestBody": _BODY},
    )
    async def post_feedback(request: Request) -> Response:
        """Log a feedback event joining `prediction_id` to `outcome` (bandit deployments
        learn from it at once). Sending the same feedback again stores it again: outcomes
        may change, and the latest is the one joined."""
        check_media_type(request.headers.get("content-type"))
        wanted = decode_feedback(await read_body(request, max_request_bytes))

        def record() -> Response:
            result = deployments().record_feedback(
                prediction_id=wanted.prediction_id, outcome=wanted.outcome,
                time=wanted.time, source="api")
            if result.rejected:
                why = (f"{result.errors[0].reason}: {result.errors[0].message}"
                       if result.errors else "see bad rows")
                raise InputError(f"feedback rejected (kept in bad rows): {why}")
            metrics.feedback.inc()
            return Response(_encode({"prediction_id": wanted.prediction_id,
                                     "stored": bool(result.accepted or result.duplicates)}),
                            media_type="application/json")

        answer: Response = await anyio.to_thread.run_sync(record)
        return answer

    return router
