"""Errors as HTTP answers: every error a client can cause is a 4xx with one line of
`detail`; the server's own trouble is a 5xx, named in its log."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from flywheel._core.errors import FlywheelError

__all__ = ["ERROR_RESPONSES", "ErrorResponse", "body_key", "error_response",
           "install_error_handlers", "server_bug_response"]

_log = logging.getLogger("flywheel.server")


class ErrorResponse(BaseModel):
    """The body of every error answer: one line saying what was wrong and what to do."""

    detail: str


ERROR_RESPONSES: dict[int | str, str] = {
    401: "Missing or invalid bearer token",
    403: "The token lacks the route's scope",
    413: "The body is over server.max_request_bytes",
    503: "The log could not commit (nothing was stored); retry after Retry-After seconds",
}
"""The errors every guarded route may answer, for its OpenAPI description."""


def body_key(path: str) -> str:
    """`error` on the Open Inference Protocol's paths (its error object), else `detail`."""
    return "error" if path == "/v2" or path.startswith("/v2/") else "detail"


def error_response(exc: FlywheelError, *, key: str = "detail") -> JSONResponse:
    """The answer to an error: its status, one line of `detail`, and the headers a client
    needs to act on it (a challenge for 401, when to retry for 429 and 503)."""
    headers = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    elif exc.http_status == 503:
        headers["Retry-After"] = "1"
    return JSONResponse({key: exc.one_line()}, status_code=exc.http_status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error a client can cause is a 4xx with one line of `detail`."""
    app.add_exception_handler(FlywheelError, _flywheel_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _server_bug)


async def _flywheel_error(request: Request, exc: FlywheelError) -> JSONResponse:
    if exc.http_status >= 500:  # the server's trouble, not the client's: name it in the log
        _log.error("%s %s answered %d: %s", request.method, request.url.path,
                  exc.http_status, exc.one_line())
    return error_response(exc, key=body_key(request.url.path))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's own answers (no such route, method not allowed), keyed as the path's
    protocol keys its errors."""
    key = body_key(request.url.path)
    if key == "detail":
        return await http_exception_handler(request, exc)
    return JSONResponse({key: str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    message = " ".join(f"{where}: {first.get('msg', 'invalid request')}".split())
    return JSONResponse({body_key(request.url.path): message}, status_code=422)


def server_bug_response(path: str) -> JSONResponse:
    """The answer to an error that is the server's bug (its traceback is in the log)."""
    return JSONResponse({body_key(path): "internal server error (a bug; see the server "
                         "log)"}, status_code=500)


async def _server_bug(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after this answer, so the server logs the traceback once.
    _log.error("unexpected error on %s %s: %r", request.method, request.url.path, exc)
    return server_bug_response(request.url.path)
