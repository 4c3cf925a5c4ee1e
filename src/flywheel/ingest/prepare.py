"""From raw inputs to validated, typed Arrow batches per log table (and bad rows).

The loop over events does only what must be done per event (envelope checks, compiled
validation, grouping); conversions run column-wise in Arrow, and fall back to one row at
a time only to single out the rows that make a column-wise step fail.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from flywheel._core.text import first_line
from flywheel.ingest import times
from flywheel.log.badrows import BadRow, Reason
from flywheel.schemas.columns import EXTRA_COLUMN, TIMESTAMP, TRACKER_FIELDS, Kind
from flywheel.schemas.keys import LogTableRef
from flywheel.schemas.registry import TableSpec, VersionSpec
from flywheel.schemas.validation import ValidationFailure, Violation, violation_from_fast

ENVELOPE_KEYS = frozenset({"schema", "data", "event_id", "event_time"})
MAX_EVENT_ID = 4096
"""Characters; any string up to this long is an id (NUL and all), stored as given."""
_encode = msgspec.json.Encoder().encode
_JsonError = fastjsonschema.JsonSchemaValueException


class NotJson:
    """Marks an input that could not be parsed as JSON."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class Rejected:
    """An input a door has already judged bad (say, a tracker event of an unsupported
    type): it becomes a bad row with the door's reason, in the same commit as the rest."""

    __slots__ = ("message", "reason", "schema")

    def __init__(self, reason: str, message: str, schema: str | None = None) -> None:
        self.reason = reason
        self.message = message
        self.schema = schema


class Tracked(dict[str, Any]):
    """An event from a tracker door (a dict, as a fix-up function expects), with what the
    tracker said beside it in `envelope`: the columns of `TRACKER_FIELDS`, as text or as
    microseconds since the epoch for times. Only doors make these; an event as a client
    sends it cannot set those columns."""

    def __init__(self, event: dict[str, Any], envelope: dict[str, str | int | None]) -> None:
        super().__init__(event)
        self.envelope = envelope


@dataclass(slots=True)
class TableRows:
    spec: TableSpec
    rows: list[dict[str, Any]] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)
    times: list[str | None] = field(default_factory=list)
    extras: list[str | None] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    trackers: list[dict[str, str | int | None] | None] = field(default_factory=list)


@dataclass(slots=True)
class Prepared:
    tables: dict[LogTableRef, tuple[pa.Schema, pa.Table]] = field(default_factory=dict)
    bad: list[BadRow] = field(default_factory=list)
    accepted_positions: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int
    max_future_us: int


class Preparer:
    def __init__(self, lookup: Callable[[str], VersionSpec | None], limits: Limits,
                 id_for: Callable[[int], str | None] | None = None,
                 time_for: Callable[[int], str | None] | None = None) -> None:
        self._lookup = lookup
        self._limits = limits
        self._id_for = id_for  # a fallback event_id per position (files, recovery)
        self._time_for = time_for  # a fallback event_time per position (recovery)

    def prepare(self, items: Sequence[Any], raws: Sequence[bytes] | None,
                now_us: int, door: str) -> Prepared:
        groups: dict[LogTableRef, TableRows] = {}
        bad: list[BadRow] = []

        def raw_of(position: int) -> bytes:
            if raws is not None:
                return raws[position]
            return _safe_raw(items[position])

        resolved: dict[str, tuple[VersionSpec, TableRows]] = {}
        for position, item in enumerate(items):
            problem = self._classify(item, position, raws, groups, resolved)
            if problem is not None:
                problem.raw = raw_of(position)
                bad.append(problem)
        prepared = Prepared(bad=bad)
        for ref, group in groups.items():
            table = self._build(group, now_us, door, bad, raw_of)
            if table is not None and table.num_rows:
                prepared.tables[ref] = (group.spec.arrow_schema, table)
                prepared.accepted_positions += table.num_rows
        return prepared

    def _classify(self, item: Any, position: int, raws: Sequence[bytes] | None,
                  groups: dict[LogTableRef, TableRows],
                  resolved: dict[str, tuple[VersionSpec, TableRows]]) -> BadRow | None:
        if type(item) is NotJson:
            return BadRow(position, Reason.NOT_JSON, item.message, b"")
        if type(item) is Rejected:
            return BadRow(position, item.reason, item.message, b"", item.schema)
        tracker = None
        if type(item) is Tracked:
            item, tracker = dict(item), item.envelope
        if raws is not None:
            size = len(raws[position])
        else:
            try:
                size = len(_encode(item))
            except (TypeError, ValueError, OverflowError) as exc:
                return BadRow(position, Reason.NOT_JSON, f"not JSON-serialisable: {exc}", b"")
        if size > self._limits.max_event_bytes:
            return BadRow(position, Reason.TOO_LARGE,
                          f"event is {size} bytes; the limit is {self._limits.max_event_bytes}",
                          b"")
        if type(item) is not dict:
            return BadRow(position, Reason.BAD_ENVELOPE,
                          "an event must be a JSON object with 'schema' and 'data'", b"")
        uri = item.get("schema")
        data = item.get("data")
        if len(item) > 2 and not ENVELOPE_KEYS.issuperset(item):
            unknown = ", ".join(sorted(str(k) for k in item if k not in ENVELOPE_KEYS))
            return BadRow(position, Reason.BAD_ENVELOPE,
                          f"unknown envelope field(s) {unknown}; allowed: schema, data, "
                          "event_id, event_time", b"", _str_or_none(uri))
        if type(uri) is not str:
            return BadRow(position, Reason.BAD_ENVELOPE,
                          "missing 'schema': name an iglu: schema key", b"")
        found = resolved.get(uri)
        if found is None:
            spec = self._lookup(uri)
            if spec is None:
                return BadRow(position, Reason.UNKNOWN_SCHEMA,
                              f"schema {uri[:200]} is not registered (run `flywheel apply`)",
                              b"", uri[:500])
            group = groups.get(spec.table.ref)
            if group is None:
                group = groups[spec.table.ref] = TableRows(spec.table)
            found = resolved[uri] = (spec, group)
        spec, group = found
        if type(data) is not dict:
            return BadRow(position, Reason.BAD_ENVELOPE, "'data' must be a JSON object", b"",
                          uri)
        event_id = item.get("event_id")
        if event_id is not None and (
            type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID
        ):
            return BadRow(position, Reason.BAD_ENVELOPE,
                          f"event_id must be a non-empty string of at most {MAX_EVENT_ID} "
                          "characters", b"", uri)
        event_time = item.get("event_time")
        if event_time is not None and type(event_time) is not str:
            if isinstance(event_time, dt.datetime) and event_time.tzinfo is not None:
                event_time = event_time.isoformat()
            else:
                return BadRow(position, Reason.BAD_ENVELOPE,
                              "event_time must be an RFC 3339 string with a time zone, "
                              "e.g. 2026-01-01T12:00:00Z", b"", uri)
        try:
            spec.validate(data)
        except _JsonError as exc:
            violation = violation_from_fast(exc)
            return BadRow(position, Reason.SCHEMA_VIOLATION, _describe(violation), b"", uri,
                          [violation])
        except ValidationFailure as failure:
            return BadRow(position, Reason.SCHEMA_VIOLATION, _describe(failure.violation), b"",
                          uri, [failure.violation])
        except Exception as exc:  # odd Python values from the SDK must not escape as a crash
            violation = Violation("$", "type", first_line(exc))
            return BadRow(position, Reason.SCHEMA_VIOLATION, _describe(violation), b"", uri,
                          [violation])
        group.rows.append(data)
        group.uris.append(uri)
        group.ids.append(event_id if event_id is not None else self._fallback_id(position))
        if event_time is None and self._time_for is not None:
            event_time = self._time_for(position)
        group.times.append(event_time)
        group.positions.append(position)
        group.trackers.append(tracker)
        if spec.table.with_extra:
            extra = None
            if spec.allows_extra and not spec.declared.issuperset(data):
                extra = _encode({k: v for k, v in data.items()
                                 if k not in spec.declared}).decode()
            group.extras.append(extra)
        return None

    def _fallback_id(self, position: int) -> str | None:
        return self._id_for(position) if self._id_for is not None else None

    def _build(self, group: TableRows, now_us: int, door: str, bad: list[BadRow],
               raw_of: Callable[[int], bytes]) -> pa.Table | None:
        keep = [True] * len(group.rows)

        def reject(i: int, reason: str, violation: Violation) -> None:
            if keep[i]:
                keep[i] = False
                bad.append(BadRow(group.positions[i], reason, _describe(violation),
                                  raw_of(group.positions[i]), group.uris[i], [violation]))

        spec = group.spec
        rows = _encode_json_columns(group.rows, spec)
        payload = _rows_to_arrow(rows, spec.loaded_schema, reject)
        columns: dict[str, pa.Array] = {}
        for column in spec.columns:
            values = payload.column(column.name)
            if column.kind in (Kind.TIMESTAMP, Kind.DATE):
                values = _parse_times(values, column.arrow_type, column.name, reject)
            columns[column.name] = values
        event_time = _parse_times(pa.array(group.times, pa.string()), TIMESTAMP, "event_time",
                                  reject, envelope=True)
        event_time = pc.fill_null(event_time, pa.scalar(now_us, TIMESTAMP))
        future = pc.greater(event_time, pa.scalar(now_us + self._limits.max_future_us, TIMESTAMP))
        for i in _true_positions(future):
            reject(i, Reason.BAD_ENVELOPE, Violation("$.event_time", "future",
                   "event_time is further in the future than ingest.max_future_seconds allows"))
        ids = group.ids  # None: the log assigns an id when it commits
        count = len(ids)
        table = pa.table(
            {
                "event_id": pa.array(ids, pa.string()),
                "schema": pa.array(group.uris, pa.string()),
                "event_time": event_time,
                "ingested_at": pa.array([now_us] * count, pa.int64()).cast(TIMESTAMP),
                "source": pa.array([door] * count, pa.string()),
                "event_date": event_time.cast(pa.date32()),
                **_tracker_columns(group.trackers),
                **columns,
                **({EXTRA_COLUMN: pa.array(group.extras, pa.string())} if spec.with_extra
                   else {}),
            }
        )
        schema = spec.arrow_schema
        table = table.cast(schema.set(0, schema.field(0).with_nullable(True)))
        return table if all(keep) else table.filter(pa.array(keep))


def _tracker_columns(trackers: list[dict[str, str | int | None] | None],
                    ) -> dict[str, pa.Array]:
    if not any(trackers):
        return {f.name: pa.nulls(len(trackers), f.type) for f in TRACKER_FIELDS}
    columns = {}
    for f in TRACKER_FIELDS:
        values = [None if t is None else t.get(f.name) for t in trackers]
        storage = pa.int64() if f.type == TIMESTAMP else f.type
        columns[f.name] = pa.array(values, storage).cast(f.type)
    return columns


def _rows_to_arrow(rows: list[dict[str, Any]], schema: pa.Schema,
                   reject: Callable[[int, str, Violation], None]) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    # Column-wise conversion failed (say, an integer beyond int64): find the rows.
    clean: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        try:
            pa.Table.from_pylist([row], schema=schema)
            clean.append(row)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            reject(i, Reason.SCHEMA_VIOLATION, _conversion_violation(row, exc))
            clean.append({})
    return pa.Table.from_pylist(clean, schema=schema)


_INT64 = (-(2**63), 2**63 - 1)


def _conversion_violation(row: dict[str, Any], exc: BaseException) -> Violation:
    """Why a row that passed its schema still has no column value: an integer beyond
    the 64-bit columns of the log is the case the schema cannot exclude by itself."""
    found = _big_integer(row, "$")
    if found is not None:
        path, value = found
        shown = str(value) if value.bit_length() < 256 else (
            f"an integer of {value.bit_length()} bits")
        return Violation(path, "range", f"{shown} is beyond the 64-bit integers the log stores "
                         f"({_INT64[0]} to {_INT64[1]}); declare it as a string (or number) "
                         "in the schema to keep such values")
    return Violation("$", "type", first_line(exc))


def _big_integer(value: Any, path: str) -> tuple[str, int] | None:
    if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
        return path, value
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, item in items:
        found = _big_integer(item, where)
        if found is not None:
            return found
    return None


def _parse_times(values: pa.Array, target: pa.DataType, name: str,
                 reject: Callable[[int, str, Violation], None],
                 envelope: bool = False) -> pa.Array:
    parsed, problems = times.parse(values, target)
    reason = Reason.BAD_ENVELOPE if envelope else Reason.SCHEMA_VIOLATION
    for i, message in problems:
        reject(i, reason, Violation(f"$.{name}", "format", message))
    return parsed


def _encode_json_columns(rows: list[dict[str, Any]], spec: TableSpec) -> list[dict[str, Any]]:
    names = [c.name for c in spec.columns if c.kind is Kind.JSON]
    if not names:
        return rows
    out = []
    for row in rows:
        if any(name in row for name in names):
            row = dict(row)
            for name in names:
                if row.get(name) is not None:
                    row[name] = _encode(row[name]).decode()
        out.append(row)
    return out


def _true_positions(mask: pa.Array) -> list[int]:
    if not pc.any(mask).as_py():
        return []
    return [i for i, flag in enumerate(mask.to_pylist()) if flag]


def _describe(violation: Violation) -> str:
    return f"{violation.path}: {violation.message}"




def _str_or_none(value: Any) -> str | None:
    return value[:500] if isinstance(value, str) else None


def _safe_raw(item: Any) -> bytes:
    try:
        return _encode(item)
    except (TypeError, ValueError, OverflowError):
        return repr(item).encode("utf-8", "backslashreplace")


Decode = Callable[[Sequence[bytes]], Sequence[Any]]
"""Raw inputs -> one item each: a parsed event, or a `NotJson` / `Rejected` verdict."""


def decode_json_items(chunks: Sequence[bytes]) -> list[Any]:
    """Parse each chunk as one JSON value; a chunk that does not parse becomes `NotJson`."""
    decode = msgspec.json.Decoder().decode
    items: list[Any] = []
    for chunk in chunks:
        try:
            items.append(decode(chunk))
        except msgspec.DecodeError as exc:
            items.append(NotJson(f"not valid JSON: {_decode_problem(chunk, exc)}"))
        except UnicodeDecodeError as exc:  # msgspec's answer to bad UTF-8 inside a string
            items.append(NotJson(f"not valid JSON: a string is not valid UTF-8 ({exc.reason} "
                                 f"at byte {exc.start} of the string)"))
        except RecursionError:  # msgspec's answer to very deep nesting
            items.append(NotJson("not valid JSON: nested too deeply"))
    return items


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _decode_problem(chunk: bytes, exc: msgspec.DecodeError) -> str:
    """msgspec says "truncated" for an unpaired surrogate escape (`"\\ud800"`), which
    is valid JSON syntax but no Unicode text: name the real problem."""
    if _SURROGATE_ESCAPE.search(chunk):
        try:
            json.loads(chunk)
        except ValueError:
            pass
        else:
            return ("a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), "
                    "which is not Unicode text")
    return str(exc)
