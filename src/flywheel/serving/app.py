"""The one FastAPI app: a router per role, the token policy, and errors as one line."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from flywheel import __version__
from flywheel._core.errors import FlywheelError
from flywheel._core.metadata import TokenRecord
from flywheel.ingest.collector import collector_router, error_response
from flywheel.ingest.keys import RateLimiter
from flywheel.ingest.snowplow_routes import keyed_router, snowplow_router
from flywheel.serving.auth import TOKEN_TTL, PublishableKeys, TokenAuth, TokenCache
from flywheel.serving.features_routes import features_router
from flywheel.serving.openapi import install_openapi

if TYPE_CHECKING:
    from flywheel.project import Project

__all__ = ["Health", "create_app", "install_error_handlers"]

_log = logging.getLogger("flywheel.server")

_DESCRIPTION = """\
Flywheel's HTTP server. Events are validated against their registered schema and
stored durably before the answer is sent; rejected events are kept in bad rows with the
reason. On a non-loopback address every request (but `/healthz`, these docs and the
`/k/<key>/` tracker doors) needs `Authorization: Bearer <token>` with the route's scope
(`admin` implies all). Browser and mobile trackers, which cannot send a token, use a
publishable key in the collector URL instead: `/k/<key>/com.snowplowanalytics.snowplow/tp2`
and `/k/<key>/i`; a key allows only its app ids, origins and rate. Every error is answered
with `{"detail": "<one line>"}`."""


class Health(BaseModel):
    status: str


def create_app(project: Project, *, require_tokens: bool = False,
               token_ttl: float = TOKEN_TTL) -> FastAPI:
    """The app for `project`. `require_tokens=False` is for loopback binds only:
    `flywheel.serving.server` decides it from the address it binds."""
    app = FastAPI(title="Flywheel", version=__version__, description=_DESCRIPTION)
    app.state.project = project

    def find_token(digest: str) -> TokenRecord | None:
        return project.metadata.find_token(digest)  # opened on first use, not here

    # One cache for tokens and keys: a revoked one is refused within `token_ttl` seconds.
    cache = TokenCache(find_token, ttl=token_ttl, negative_ttl=token_ttl)
    auth = TokenAuth(cache if require_tokens else None)
    limit = project.config.server.max_request_bytes
    app.include_router(collector_router(project, limit, auth.require("ingest")))
    app.include_router(snowplow_router(project, limit, auth.require("ingest")))
    app.include_router(keyed_router(project, limit, PublishableKeys(cache), RateLimiter()))
    app.include_router(features_router(project, limit, auth.require("read")))

    @app.get("/healthz", summary="Liveness check", tags=["health"])
    async def healthz() -> Health:
        """Always open (no token): the process is up and serving."""
        return Health(status="ok")

    install_error_handlers(app)
    install_openapi(app, lambda: project.schemas.current,
                    project.config.ingest.max_future_seconds)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Every error a client can cause is a 4xx with one line of `detail`."""
    app.add_exception_handler(FlywheelError, _flywheel_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _server_bug)


async def _flywheel_error(request: Request, exc: FlywheelError) -> JSONResponse:
    if exc.http_status >= 500:  # the server's trouble, not the client's: name it in the log
        _log.error("%s %s answered %d: %s", request.method, request.url.path,
                  exc.http_status, exc.one_line())
    return error_response(exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    message = " ".join(f"{where}: {first.get('msg', 'invalid request')}".split())
    return JSONResponse({"detail": message}, status_code=422)


async def _server_bug(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after this answer, so the server logs the traceback once.
    _log.error("unexpected error on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse({"detail": "internal server error (a bug; see the server log)"},
                        status_code=500)
