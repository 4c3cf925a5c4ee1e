"""The bad-rows table: every rejected input, as received, with machine-readable errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pyarrow as pa

from flywheel._core.errors import SchemaDefinitionError
from flywheel.schemas.columns import TIMESTAMP
from flywheel.schemas.keys import SchemaKey
from flywheel.schemas.validation import Violation

BAD_ROWS_TABLE = "_bad_rows"
PARTITION = "received_date"

ERROR_TYPE = pa.struct([("path", pa.string()), ("rule", pa.string()), ("message", pa.string())])

BAD_ROWS_SCHEMA = pa.schema(
    [
        pa.field("bad_row_id", pa.string(), nullable=False),
        pa.field("received_at", TIMESTAMP, nullable=False),
        pa.field("door", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("schema", pa.string()),
        pa.field("message", pa.string(), nullable=False),
        pa.field("errors", pa.list_(ERROR_TYPE)),
        pa.field("raw", pa.large_binary(), nullable=False),
        pa.field(PARTITION, pa.date32(), nullable=False),
        # sha256 of door and raw input: one bad row per distinct input, however often it
        # is sent (null in rows written before it existed: computed when read back).
        pa.field("fingerprint", pa.string()),
    ]
)
NO_TABLE = "-"
"""Where inputs that name no (parseable) schema are counted."""


def fingerprint(door: str, raw: bytes) -> str:
    return hashlib.sha256(door.encode() + b"\x00" + raw).hexdigest()


def table_of(schema: str | None) -> str:
    """The log table a bad row's schema names (`-` when none can be read from it)."""
    if not schema:
        return NO_TABLE
    try:
        return str(SchemaKey.parse(schema).table)
    except SchemaDefinitionError:
        return NO_TABLE


class Reason:
    """Why an input was rejected; the values are stable and machine-readable."""

    NOT_JSON = "not_json"
    BAD_ENVELOPE = "bad_envelope"
    UNKNOWN_SCHEMA = "unknown_schema"
    SCHEMA_VIOLATION = "schema_violation"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported_event"


REASONS = frozenset(v for k, v in vars(Reason).items() if k.isupper())


@dataclass(slots=True)
class BadRow:
    index: int
    reason: str
    message: str
    raw: bytes
    schema: str | None = None
    errors: list[Violation] = field(default_factory=list)


def bad_rows_table(rows: list[BadRow], ids: list[str], door: str, received_at_us: int,
                   ) -> pa.Table:
    received = pa.array([received_at_us] * len(rows), pa.int64()).cast(TIMESTAMP)
    return pa.table(
        {
            "bad_row_id": pa.array(ids, pa.string()),
            "received_at": received,
            "door": pa.array([door] * len(rows), pa.string()),
            "reason": pa.array([r.reason for r in rows], pa.string()),
            "schema": pa.array([r.schema for r in rows], pa.string()),
            "message": pa.array([r.message for r in rows], pa.string()),
            "errors": pa.array([[v.as_dict() for v in r.errors] for r in rows],
                               pa.list_(ERROR_TYPE)),
            "raw": pa.array([r.raw for r in rows], pa.large_binary()),
            PARTITION: received.cast(pa.date32()),
            "fingerprint": pa.array([fingerprint(door, r.raw) for r in rows], pa.string()),
        },
        schema=BAD_ROWS_SCHEMA,
    )
