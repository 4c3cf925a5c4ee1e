"""A body of events, as a collector receives it, split into each event's raw bytes.

Each event's bytes are kept exactly as received, so a rejected event is stored in bad
rows as the client sent it. Nothing here knows of HTTP: the HTTP edge reads the body,
this splits it, and the ingestor takes the pieces.
"""

from __future__ import annotations

import msgspec

from flywheel._core.errors import InputError

__all__ = ["JSON_SPACE", "EmptyBodyError", "check_not_empty", "split_body"]

JSON_SPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_decode_raw_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


class EmptyBodyError(InputError):
    """The request carried no events at all."""


def check_not_empty(body: bytes, *, hint: str) -> None:
    """Refuse a body holding only JSON whitespace: it carries no event to store."""
    if not body.strip(JSON_SPACE):
        raise EmptyBodyError("the request body is empty", hint=hint)


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
