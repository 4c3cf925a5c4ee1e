"""Reading a request body: bounded in size, and only of the media types a route takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec
from fastapi import Request

from flywheel._core.errors import InputError

__all__ = ["JSON_MEDIA_TYPES", "RequestTooLargeError", "UnsupportedMediaTypeError",
           "check_media_type", "decode_json", "read_body", "too_large"]


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


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) past `limit` bytes, by header and as streamed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise too_large(size, limit, at_least=True)
        parts.append(part)
    return b"".join(parts)


def too_large(size: int, limit: int, at_least: bool = False) -> RequestTooLargeError:
    amount = f"{'more than ' if at_least else ''}{limit if at_least else size} bytes"
    return RequestTooLargeError(f"request body is {amount}; server.max_request_bytes is {limit}",
                                hint="send fewer events per request")


_Body = TypeVar("_Body")


def decode_json(decode: Callable[[bytes], _Body], body: bytes, *, invalid: str, hint: str,
                error: type[InputError] = InputError,
                not_json: type[InputError] = InputError) -> _Body:
    """A body decoded by a msgspec decoder; one line otherwise: `not_json` for bytes that
    are not JSON, `error` ("<invalid>: ...", with `hint`) for JSON of the wrong shape."""
    try:
        return decode(body)
    except msgspec.ValidationError as exc:
        raise error(f"{invalid}: {exc}", hint=hint) from None
    except msgspec.DecodeError as exc:
        raise not_json(f"the body is not JSON: {exc}") from None
