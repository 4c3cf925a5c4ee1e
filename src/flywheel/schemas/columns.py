"""How a JSON Schema becomes the typed columns of its log table.

Each top-level property is a column; the Arrow type follows the JSON type. Values that have
no faithful Arrow type (free-form objects, mixed types) are kept as JSON text, and
properties a schema allows but does not declare go, as JSON, to the `_extra` column, so
nothing an accepted event carried is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

TRACKER_FIELDS = (
    pa.field("app_id", pa.string()),
    pa.field("platform", pa.string()),
    pa.field("name_tracker", pa.string()),
    pa.field("v_tracker", pa.string()),
    pa.field("dvce_created_tstamp", TIMESTAMP),
    pa.field("dvce_sent_tstamp", TIMESTAMP),
    pa.field("true_tstamp", TIMESTAMP),
    pa.field("useragent", pa.string()),
)
"""What a tracker says about an event beside its payload, named as in Snowplow's enriched
event; null for events from doors that have no tracker (SDK, files, `POST /v1/events`)."""
TRACKER_COLUMNS = tuple(f.name for f in TRACKER_FIELDS)
ENVELOPE_COLUMNS = ("event_id", "schema", "event_time", "ingested_at", "source", "event_date",
                    *TRACKER_COLUMNS)
EXTRA_COLUMN = "_extra"
RESERVED = frozenset((*ENVELOPE_COLUMNS, EXTRA_COLUMN))

ENVELOPE_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("schema", pa.string(), nullable=False),
        pa.field("event_time", TIMESTAMP, nullable=False),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),
        *TRACKER_FIELDS,
    ]
)


class Kind(Enum):
    """How a value travels from the parsed JSON to its Arrow column."""

    PLAIN = "plain"  # Arrow converts the Python value as it is
    JSON = "json"  # encoded to JSON text first
    TIMESTAMP = "timestamp"  # RFC 3339 text, cast to timestamp[us, UTC]
    DATE = "date"  # ISO date text, cast to date32


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    arrow_type: pa.DataType
    kind: Kind

    @property
    def loaded_type(self) -> pa.DataType:
        """The type Arrow builds from the Python values, before any cast."""
        return pa.string() if self.kind is not Kind.PLAIN else self.arrow_type

    def signature(self) -> str:
        return f"{self.arrow_type}/{self.kind.value}"


_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        found = {declared}
    elif isinstance(declared, list):
        found = {t for t in declared if isinstance(t, str)}
    elif "properties" in schema:
        found = {"object"}
    elif isinstance(schema.get("enum"), list) and schema["enum"]:
        found = {_json_type_of(v) for v in schema["enum"]}
    else:
        found = set()
    found.discard("null")
    if found == {"integer", "number"}:
        return {"number"}
    return found


def _json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _value_type(schema: Any) -> tuple[pa.DataType, Kind]:
    if not isinstance(schema, dict):
        return pa.string(), Kind.JSON
    types = _types(schema)
    if len(types) != 1:
        return pa.string(), Kind.JSON
    (json_type,) = types
    if json_type == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return TIMESTAMP, Kind.TIMESTAMP
        if fmt == "date":
            return pa.date32(), Kind.DATE
        return pa.string(), Kind.PLAIN
    if json_type in _SCALARS:
        return _SCALARS[json_type], Kind.PLAIN
    if json_type == "array":
        item_type, item_kind = _value_type(schema.get("items"))
        if item_kind is Kind.PLAIN:
            return pa.list_(item_type), Kind.PLAIN
        return pa.string(), Kind.JSON
    if json_type == "object":
        return _struct_type(schema)
    return pa.string(), Kind.JSON


def _struct_type(schema: dict[str, Any]) -> tuple[pa.DataType, Kind]:
    # A nested object becomes a struct only when it is closed and every field is plain:
    # an open object could carry fields a struct would silently drop.
    properties = schema.get("properties")
    if schema.get("additionalProperties") is not False or not isinstance(properties, dict):
        return pa.string(), Kind.JSON
    if not properties:
        return pa.string(), Kind.JSON
    fields = []
    for name, sub in properties.items():
        sub_type, sub_kind = _value_type(sub)
        if sub_kind is not Kind.PLAIN:
            return pa.string(), Kind.JSON
        fields.append(pa.field(name, sub_type))
    return pa.struct(fields), Kind.PLAIN


def payload_columns(schema: dict[str, Any]) -> list[Column]:
    """The typed columns of one schema version's top-level properties, in declared order."""
    properties = schema.get("properties") or {}
    columns = []
    for name, sub in properties.items():
        arrow_type, kind = _value_type(sub)
        columns.append(Column(name, arrow_type, kind))
    return columns


def allows_extra(schema: dict[str, Any]) -> bool:
    """Does the schema accept properties it does not declare (JSON Schema's default)?"""
    return schema.get("additionalProperties", True) is not False or bool(
        schema.get("patternProperties")
    )


def table_schema(columns: list[Column], with_extra: bool) -> pa.Schema:
    fields = list(ENVELOPE_SCHEMA) + [pa.field(c.name, c.arrow_type) for c in columns]
    if with_extra:
        fields.append(pa.field(EXTRA_COLUMN, pa.string()))
    return pa.schema(fields)
