"""The server's ASGI fast path: `POST /v1/models/{deployment}/predict` and the Open
Inference Protocol's `POST /v2/models/{name}[/versions/{version}]/infer`, answered before
the app's middleware stack, routing, dependency resolution and response classes. At 32
connections on two cores those took about half the server's CPU per prediction.

`FlywheelApp` asks it first; every other request is the app's as before. Its answers are
the routes' own: the same handlers (`PredictHandler`, `InferHandler`), the same token
check, the same one-line errors keyed as the path's protocol keys them, and an unexpected
error logged with its traceback and answered 500, as the app's error middleware would.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from flywheel._core.errors import FlywheelError
from flywheel.api.auth import bearer_secret
from flywheel.api.body import too_large
from flywheel.api.errors import body_key, error_response, server_bug_response

if TYPE_CHECKING:
    from flywheel.api.oip import InferHandler
    from flywheel.api.predict import PredictHandler

__all__ = ["FastPath"]

_log = logging.getLogger("flywheel.server")

_Body = Callable[[], Awaitable[bytes]]
_Call = Callable[[dict[bytes, str], _Body], Awaitable[bytes]]
_JSON_HEADERS = [(b"content-type", b"application/json")]
_PREDICT = ("/v1/models/", "/predict")
_INFER = ("/v2/models/", "/infer")
_VERSIONS = "/versions/"


class FastPath:
    """Answers predict and inference requests; anything else is left to the app."""

    def __init__(self, *, predict: PredictHandler, infer: InferHandler,
                 max_request_bytes: int,
                 check_token: Callable[[str | None], Awaitable[object]] | None) -> None:
        self._predict = predict
        self._infer = infer
        self._limit = max_request_bytes
        self._check_token = check_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is one of the fast routes; False (nothing sent) if
        not."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        call = self._call_for(_app_path(scope))
        if call is None:
            return False
        headers = _headers(scope)
        try:
            if self._check_token is not None:
                await self._check_token(bearer_secret(headers.get(b"authorization")))
            answer = await call(headers, lambda: _read_body(
                receive, headers.get(b"content-length"), self._limit))
        except FlywheelError as exc:
            if exc.http_status >= 500:  # the server's trouble: named in its log
                _log.error("POST %s answered %d: %s", scope["path"], exc.http_status,
                           exc.one_line())
            await error_response(exc, key=body_key(scope["path"]))(scope, receive, send)
            return True
        except ClientDisconnect:
            return True
        except Exception:
            _log.exception("unexpected error on POST %s", scope["path"])
            await server_bug_response(scope["path"])(scope, receive, send)
            return True
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_JSON_HEADERS,
                                (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})
        return True

    def _call_for(self, path: str) -> _Call | None:
        """The handler call for a fast route's path, or None."""
        deployment = _segment(path, *_PREDICT)
        if deployment is not None:

            def predict(headers: dict[bytes, str], body: _Body) -> Awaitable[bytes]:
                return self._predict.answer(deployment, headers.get(b"content-type"), body)

            return predict
        target = _infer_target(path)
        if target is None:
            return None
        model, version = target

        def infer(headers: dict[bytes, str], body: _Body) -> Awaitable[bytes]:
            return self._infer.answer(model, version, headers.get(b"content-type"),
                                      b"inference-header-content-length" in headers, body)

        return infer


def _app_path(scope: Scope) -> str:
    """The request's path without the app's root path."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path


def _segment(path: str, prefix: str, suffix: str) -> str | None:
    """The one path segment between `prefix` and `suffix`, as the routes' `{name}`
    matches it (not empty, no slash), or None."""
    name = _between(path, prefix, suffix)
    return name if name is not None and _one_segment(name) else None


def _between(path: str, prefix: str, suffix: str) -> str | None:
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    return path[len(prefix):len(path) - len(suffix)]


def _one_segment(text: str) -> bool:
    return bool(text) and "/" not in text


def _infer_target(path: str) -> tuple[str, str | None] | None:
    """(model, version) of `/v2/models/{name}/infer` (version None) or of
    `/v2/models/{name}/versions/{version}/infer`, or None."""
    inner = _between(path, *_INFER)
    if inner is None:
        return None
    model, versioned, version = inner.partition(_VERSIONS)
    if not versioned:
        return (model, None) if _one_segment(model) else None
    return (model, version) if _one_segment(model) and _one_segment(version) else None


def _headers(scope: Scope) -> dict[bytes, str]:
    # Latin-1, as HTTP headers are: never a decoding error on a hostile byte.
    return {key: value.decode("latin-1") for key, value in scope["headers"]}


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise too_large(size, limit, at_least=True)
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)
