"""Value encoding shared by the online backends: msgpack blobs and integer microseconds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


class Record(msgspec.Struct, frozen=True):
    """What a key-value backend stores per (view, key): the values and their event time."""

    values: dict[str, Any]
    event_time_us: int


_encoder = msgspec.msgpack.Encoder()
_values_decoder = msgspec.msgpack.Decoder(dict[str, Any])
_record_decoder = msgspec.msgpack.Decoder(Record)


def to_micros(when: dt.datetime) -> int:
    """Microseconds since the Unix epoch; integer arithmetic, so no float rounding."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"event_time {when.isoformat()} has no timezone")
    return (when - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def encode_values(values: Mapping[str, Any]) -> bytes:
    return _encoder.encode(values)


def decode_values(blob: bytes) -> dict[str, Any]:
    return _values_decoder.decode(blob)


def encode_record(values: Mapping[str, Any], event_time_us: int) -> bytes:
    # A plain dict (not Record) so any Mapping is accepted; the layout is the same msgpack map.
    return _encoder.encode({"values": values, "event_time_us": event_time_us})


def decode_record(blob: bytes) -> Record:
    return _record_decoder.decode(blob)
