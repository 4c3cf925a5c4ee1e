"""The Snowplow tracker protocol, turned into Flywheel events.

Trackers send events as flat parameter maps (`e`, `eid`, `dtm`, `ue_px`, ...), either
in the query string of `GET /i` or as the `data` array of a `payload_data` JSON in
`POST /com.snowplowanalytics.snowplow/tp2`. Only self-describing events (`e=ue`) have a
schema, so only they become Flywheel events:

    {"schema": <inner schema>, "data": <inner data>, "event_id": eid,
     "event_time": ttm (true timestamp) else dtm (device created), RFC 3339 UTC}

Everything else becomes a `Rejection` that the door stores in bad rows; nothing is
dropped. What the tracker says about the event goes to envelope columns of every log
table, named as in Snowplow's enriched event (null for events from other doors):

    aid -> app_id         p -> platform             tna -> name_tracker
    tv -> v_tracker       dtm -> dvce_created_tstamp stm -> dvce_sent_tstamp
    ttm -> true_tstamp    ua (else the request's User-Agent header) -> useragent
    the collector's receive time -> ingested_at (Snowplow's collector_tstamp)

Subject fields (uid, duid, ip) and contexts (`co`/`cx`) are not carried over: model
them in the event's schema.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from flywheel._core.errors import InputError
from flywheel._core.text import first_line
from flywheel.ingest.body import check_not_empty
from flywheel.ingest.prepare import Decode, Rejected, Tracked
from flywheel.log.badrows import Reason

__all__ = [
    "DOOR",
    "EVENT_TYPES",
    "PAYLOAD_DATA_PREFIX",
    "PLATFORMS",
    "UNSTRUCT_EVENT_PREFIX",
    "NotPayloadDataError",
    "Rejection",
    "decode_params",
    "items_from_params",
    "keyed_tp2_params",
    "pixel_event",
    "split_payload_data",
    "to_event",
    "to_tracked",
    "tp2_batch",
    "tracker_envelope",
    "tracker_fixup",
    "tracker_items",
]

DOOR = "snowplow"

PAYLOAD_DATA_PREFIX = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"
UNSTRUCT_EVENT_PREFIX = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-"
_PAYLOAD_DATA_SCHEMA = re.compile(re.escape(PAYLOAD_DATA_PREFIX) + r"[0-9]+")
EVENT_TYPES = {"pv": "page view", "pp": "page ping", "se": "structured event",
               "tr": "transaction", "ti": "transaction item", "ad": "ad impression"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_decode = msgspec.json.Decoder().decode
_DECODE_ERRORS = (ValueError, RecursionError)
"""What msgspec raises on bad input: DecodeError (a ValueError), UnicodeDecodeError for
invalid UTF-8 inside strings, RecursionError for very deep nesting."""
_MAX_SHOWN = 40
_encode = msgspec.json.Encoder().encode
_EMPTY_HINT = "trackers send a payload_data JSON with the events"


class _PayloadData(msgspec.Struct):
    schema: str
    data: list[msgspec.Raw]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A tracker event that cannot become a Flywheel event, and why (a bad-row reason)."""

    reason: str
    message: str
    schema: str | None = None


class NotPayloadDataError(InputError):
    """A tp2 body that is not a `payload_data` self-describing JSON at all."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, hint="trackers send {\"schema\": \"iglu:com.snowplowanalytics"
                         ".snowplow/payload_data/jsonschema/1-0-4\", \"data\": [...]}")
        self.reason = reason


class _Reject(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def split_payload_data(body: bytes) -> list[bytes]:
    """The raw bytes of each tracker event in a tp2 body, as received."""
    try:
        payload = msgspec.json.decode(body, type=_PayloadData)
    except msgspec.ValidationError as exc:
        raise NotPayloadDataError(f"not a Snowplow payload_data JSON: {exc}",
                                  Reason.BAD_ENVELOPE) from None
    except _DECODE_ERRORS as exc:
        raise NotPayloadDataError(f"body is not valid JSON: {first_line(exc, 200)}",
                                  Reason.NOT_JSON) from None
    if _PAYLOAD_DATA_SCHEMA.fullmatch(payload.schema) is None:
        raise NotPayloadDataError(
            f"schema {_shown(payload.schema)} is not {PAYLOAD_DATA_PREFIX}*",
            Reason.BAD_ENVELOPE)
    return [bytes(raw) for raw in payload.data]


def decode_params(raw: bytes) -> dict[str, Any] | Rejection:
    """One tracker event's parameter map from its JSON bytes."""
    try:
        params = _decode(raw)
    except _DECODE_ERRORS as exc:
        return Rejection(Reason.NOT_JSON,
                         f"tracker event is not valid JSON: {first_line(exc, 200)}")
    if type(params) is not dict:
        return Rejection(Reason.BAD_ENVELOPE, "a tracker event must be a JSON object of "
                         "parameters (e, eid, dtm, ue_px, ...)")
    return params


def to_event(params: Mapping[str, Any]) -> dict[str, Any] | Rejection:
    """The Flywheel event for one tracker event, or why there is none."""
    kind = params.get("e")
    if kind != "ue":
        return _unsupported(kind)
    schema: str | None = None
    try:
        schema, data = _self_describing(_unstruct_payload(params))
        event: dict[str, Any] = {"schema": schema, "data": data}
        event_id = params.get("eid")
        if event_id is not None:
            if type(event_id) is not str:
                raise _Reject(Reason.BAD_ENVELOPE, "'eid' must be a string")
            event["event_id"] = event_id
        event_time = _event_time(params)
        if event_time is not None:
            event["event_time"] = event_time
    except _Reject as problem:
        return Rejection(problem.reason, problem.message, schema)
    return event


PLATFORMS = frozenset({"web", "mob", "pc", "srv", "app", "tv", "cnsl", "iot", "headset"})
"""The platform codes of the tracker protocol (`p`)."""
_TEXT_FIELDS = {"aid": "app_id", "tna": "name_tracker", "tv": "v_tracker", "ua": "useragent"}
_TIME_FIELDS = {"dtm": "dvce_created_tstamp", "stm": "dvce_sent_tstamp", "ttm": "true_tstamp"}
_MAX_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_MIN_MICROS = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z


def tracker_envelope(params: Mapping[str, Any], useragent: str | None = None,
                     ) -> dict[str, str | int | None] | Rejection:
    """The envelope columns of one tracker event (times in microseconds since the
    epoch); `useragent` is the request's header, used when the event has no `ua`."""
    envelope: dict[str, str | int | None] = {"useragent": useragent}
    for param, column in _TEXT_FIELDS.items():
        value = params.get(param)
        if value is None or value == "":
            continue
        if type(value) is not str:
            return Rejection(Reason.BAD_ENVELOPE, f"'{param}' must be a string")
        envelope[column] = value
    platform = params.get("p")
    if platform is not None and platform != "":
        if type(platform) is not str or platform not in PLATFORMS:
            return Rejection(Reason.BAD_ENVELOPE, f"'p' (platform) is {_shown(platform)}; "
                             f"known platforms: {', '.join(sorted(PLATFORMS))}")
        envelope["platform"] = platform
    for param, column in _TIME_FIELDS.items():
        value = params.get(param)
        if value is None or value == "":
            continue
        millis = _millis(value)
        if millis is None or not _MIN_MICROS <= millis * 1000 <= _MAX_MICROS:
            return Rejection(Reason.BAD_ENVELOPE, f"'{param}' must be milliseconds since the "
                             f"epoch, within the years 0001 to 9999; got {_shown(value)}")
        envelope[column] = millis * 1000
    return envelope


def to_tracked(params: Mapping[str, Any], useragent: str | None = None,
               ) -> Tracked | Rejection:
    """The Flywheel event for one tracker event with its envelope columns, or why not."""
    event = to_event(params)
    if isinstance(event, Rejection):
        return event
    envelope = tracker_envelope(params, useragent)
    if isinstance(envelope, Rejection):
        return Rejection(envelope.reason, envelope.message, event["schema"])
    return Tracked(event, envelope)


def tracker_items(raws: Sequence[bytes], useragent: str | None = None) -> list[object]:
    """Each raw parameter map as a tracked Flywheel event, or as `Rejected` with the
    reason; `useragent` (the request's header) stands in for a missing `ua`."""
    return items_from_params([decode_params(raw) for raw in raws], useragent)


def items_from_params(decoded: Sequence[dict[str, Any] | Rejection],
                      useragent: str | None = None) -> list[object]:
    """`tracker_items` for parameter maps already decoded (or judged) by `decode_params`."""
    items: list[object] = []
    for params in decoded:
        event = params if isinstance(params, Rejection) else to_tracked(params, useragent)
        if isinstance(event, Rejection):
            items.append(Rejected(event.reason, event.message, event.schema))
        else:
            items.append(event)
    return items


def tp2_batch(body: bytes, useragent: str | None = None,
              ) -> tuple[list[bytes], Decode, str | None]:
    """What a tp2 body gives the ingestor: its raw tracker events and how to decode them;
    or, when the body is not a payload_data JSON, the body itself as one bad row, and why.
    Events that cannot be converted become bad rows in the same group commit."""
    check_not_empty(body, hint=_EMPTY_HINT)
    try:
        raws = split_payload_data(body)
    except NotPayloadDataError as exc:
        rejected = [Rejected(exc.reason, exc.message)]
        return [body], lambda _: rejected, f"{exc.one_line()}; the body is kept in bad rows"
    return raws, lambda raws: tracker_items(raws, useragent), None


def keyed_tp2_params(body: bytes) -> tuple[list[bytes], list[dict[str, Any] | Rejection]]:
    """A tp2 body under a publishable key: its raw tracker events and their parameters,
    for the key's checks. Not a payload_data JSON: refused whole, nothing stored (a key's
    request is stored only once its events are known to be allowed)."""
    check_not_empty(body, hint=_EMPTY_HINT)
    try:
        raws = split_payload_data(body)
    except NotPayloadDataError as exc:
        raise InputError(f"{exc.one_line()}; nothing was stored") from None
    return raws, [decode_params(raw) for raw in raws]


def pixel_event(params: Mapping[str, str]) -> list[bytes]:
    """The query of a `GET /i` as the one raw tracker event it carries."""
    return [_encode(dict(params))]


def tracker_fixup(item: Any) -> Any:
    """A fix-up for `project.log.recover`: bad rows from the Snowplow door hold the tracker
    parameters; this turns them into Flywheel events (other rows pass through unchanged;
    rows that still cannot be converted are left alone)."""
    if type(item) is not dict or "e" not in item:
        return item
    event = to_tracked(item)
    return None if isinstance(event, Rejection) else event


def _unsupported(kind: Any) -> Rejection:
    if type(kind) is not str or not kind:
        return Rejection(Reason.BAD_ENVELOPE, "tracker event has no event type (parameter 'e')")
    name = EVENT_TYPES.get(kind, "this type of")
    return Rejection(Reason.UNSUPPORTED,
                     f"{name} events (e={_shown(kind)}) are not supported: only self-describing "
                     "events (e=ue) are; send them with the tracker's SelfDescribing event")


def _unstruct_payload(params: Mapping[str, Any]) -> Any:
    if params.get("ue_pr") is not None:
        text = params["ue_pr"]
        if type(text) is not str:
            raise _Reject(Reason.BAD_ENVELOPE, "'ue_pr' must be a string holding JSON")
        raw, where = text.encode("utf-8", "replace"), "ue_pr"
    elif params.get("ue_px") is not None:
        raw, where = _base64url(params["ue_px"]), "ue_px"
    else:
        raise _Reject(Reason.BAD_ENVELOPE,
                      "self-describing event (e=ue) has neither 'ue_pr' nor 'ue_px'")
    try:
        return _decode(raw)
    except _DECODE_ERRORS as exc:
        raise _Reject(Reason.NOT_JSON,
                      f"'{where}' is not valid JSON: {first_line(exc, 200)}") from None


def _base64url(value: Any) -> bytes:
    """Decode base64url (or plain base64), padding optional, strictly."""
    if type(value) is not str:
        raise _Reject(Reason.BAD_ENVELOPE, "'ue_px' must be a base64url string")
    text = value.strip().rstrip("=").replace("-", "+").replace("_", "/")
    try:
        if len(text) % 4 == 1:
            raise ValueError("bad length")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise _Reject(Reason.NOT_JSON, "'ue_px' is not valid base64url") from None


def _self_describing(envelope: Any) -> tuple[str, Any]:
    """(schema, data) of the event inside the unstruct_event wrapper."""
    outer = envelope.get("schema") if type(envelope) is dict else None
    if type(outer) is not str or not outer.startswith(UNSTRUCT_EVENT_PREFIX):
        raise _Reject(Reason.BAD_ENVELOPE, "the self-describing payload must be "
                      f"{{\"schema\": \"{UNSTRUCT_EVENT_PREFIX}0-0\", \"data\": {{...}}}}")
    inner = envelope.get("data")
    schema = inner.get("schema") if type(inner) is dict else None
    if type(inner) is not dict or type(schema) is not str or "data" not in inner:
        raise _Reject(Reason.BAD_ENVELOPE, "the unstruct_event data must be a self-describing "
                      "JSON: {\"schema\": \"iglu:vendor/name/jsonschema/1-0-0\", \"data\": {...}}")
    return schema, inner["data"]


def _event_time(params: Mapping[str, Any]) -> str | None:
    """RFC 3339 UTC from `ttm` (true timestamp) or else `dtm` (device created), in ms."""
    for name in ("ttm", "dtm"):
        value = params.get(name)
        if value is None or value == "":
            continue
        millis = _millis(value)
        if millis is not None:
            try:
                moment = _EPOCH + dt.timedelta(milliseconds=millis)
            except OverflowError:
                millis = None
            else:
                return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        raise _Reject(Reason.BAD_ENVELOPE, f"'{name}' must be milliseconds since the epoch; "
                      f"got {_shown(value)}")
    return None


def _millis(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str:
        text = value.strip()
        digits = text.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(text)
    return None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


