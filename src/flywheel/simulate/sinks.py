"""Where simulated events go: an NDJSON file, or a running collector over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from flywheel._core.errors import InputError

__all__ = ["BATCH_SIZE", "PROTOCOLS", "PostReport", "Progress", "post_events",
           "snowplow_parameters", "write_ndjson"]

PROTOCOLS = ("flywheel", "snowplow")
"""`flywheel`: JSON arrays to `/v1/events`; `snowplow`: tracker payloads to `/tp2`."""
_TP2 = "/com.snowplowanalytics.snowplow/tp2"
_PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
_UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"

BATCH_SIZE = 1_000
Progress = Callable[[int], None]
"""Told the number of events sent so far."""


def write_ndjson(
    events: Iterable[dict[str, Any]],
    target: Path | TextIO,
    *,
    on_progress: Progress | None = None,
) -> int:
    """Write `events` to a file (or an open text stream, such as stdout), one JSON object a
    line; returns how many were written."""
    if not isinstance(target, Path):
        return _write(events, target, on_progress)
    with target.open("w", encoding="utf-8") as out:
        return _write(events, out, on_progress)


def _write(events: Iterable[dict[str, Any]], out: TextIO, on_progress: Progress | None) -> int:
    import msgspec

    # msgspec writes NDJSON about five times faster than the json module.
    encode = msgspec.json.Encoder().encode_lines
    binary = getattr(out, "buffer", None)
    written = 0
    for batch in _batches(events, BATCH_SIZE * 10):
        lines = encode(batch)
        if binary is not None:
            out.flush()
            binary.write(lines)
        else:
            out.write(lines.decode())
        written += len(batch)
        if on_progress is not None:
            on_progress(written)
    return written


@dataclass(frozen=True, slots=True)
class PostReport:
    """What a collector answered, summed over the batches."""

    sent: int
    accepted: int
    rejected: int
    duplicates: int


def post_events(
    events: Iterable[dict[str, Any]],
    url: str,
    *,
    token: str | None = None,
    batch_size: int = BATCH_SIZE,
    on_progress: Progress | None = None,
    timeout: float = 60.0,
    protocol: str = "flywheel",
) -> PostReport:
    """POST `events` to a collector (`URL/v1/events`) in batches of `batch_size`; with
    `protocol="snowplow"`, as a Snowplow tracker sends them (`URL/com.snowplowanalytics.
    snowplow/tp2`, each event a self-describing `e=ue` with `eid` and `dtm`).

    Rejected events are the collector's to keep as bad rows; any answer other than 200
    (a wrong token, a server error) stops here with its status and body."""
    import httpx
    import msgspec

    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}", hint="one of: " + ", ".join(PROTOCOLS))
    encoder = msgspec.json.Encoder()

    def encode(batch: list[dict[str, Any]]) -> bytes:
        if protocol == "flywheel":
            return encoder.encode(batch)
        return encoder.encode({"schema": _PAYLOAD_DATA,
                               "data": [snowplow_parameters(e) for e in batch]})

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    totals = [0, 0, 0, 0]
    endpoint = url.rstrip("/") + ("/v1/events" if protocol == "flywheel" else _TP2)
    with httpx.Client(headers=headers, timeout=timeout) as client:
        for batch in _batches(events, batch_size):
            try:
                answer = client.post(endpoint, content=encode(batch))
            except httpx.HTTPError as exc:
                raise InputError(f"cannot reach the collector at {endpoint}: {exc}") from None
            if answer.status_code != 200:
                raise InputError(
                    f"the collector at {endpoint} answered "
                    f"{answer.status_code}: {answer.text[:200]}"
                )
            body = answer.json()
            for i, key in enumerate(("accepted", "rejected", "duplicates")):
                totals[i + 1] += int(body.get(key, 0))
            totals[0] += len(batch)
            if on_progress is not None:
                on_progress(totals[0])
    return PostReport(sent=totals[0], accepted=totals[1], rejected=totals[2], duplicates=totals[3])


def _batches(events: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(events)
    while batch := list(islice(it, size)):
        yield batch


def snowplow_parameters(event: dict[str, Any]) -> dict[str, str]:
    """A Flywheel event as a tracker's parameters: a self-describing event (`ue_pr`), its
    id (`eid`) and its device time in milliseconds (`dtm`), as the JavaScript tracker
    sends them."""
    import datetime as dt
    import json

    params = {"e": "ue", "p": "web", "tv": "flywheel-simulate",
              "ue_pr": json.dumps({"schema": _UNSTRUCT, "data": {
                  "schema": event.get("schema"), "data": event.get("data")}})}
    if isinstance(event.get("event_id"), str):
        params["eid"] = event["event_id"]
    when = event.get("event_time")
    if isinstance(when, str):
        moment = dt.datetime.fromisoformat(when)
        params["dtm"] = str(int(moment.timestamp() * 1000))
    return params
