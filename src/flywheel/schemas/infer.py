"""A first schema for existing data: one property per column of a file, typed by its values.

The facts about the columns (their types, whether any cell is empty) are gathered by the
file readers; this module only decides what the schema says, so that the rules are in
one place: every column but the envelope's time and id is a property, `required` when no
cell is empty; integers, numbers, booleans and text keep their JSON types; timestamps with
a zone are `format: date-time` (naive ones too: ingestion reads them as UTC), dates are
`format: date`; the schema is closed (`additionalProperties: false`), so that a column
added later is noticed instead of being kept as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flywheel._core.errors import InputError
from flywheel.schemas.columns import RESERVED
from flywheel.schemas.keys import SchemaKey
from flywheel.schemas.validation import DRAFT7

KINDS = ("integer", "number", "boolean", "date-time", "date", "string", "array", "object")


@dataclass(slots=True, kw_only=True)
class ColumnFacts:
    """What a reader found out about one column."""

    name: str
    kind: str | None
    """One of KINDS; None when no cell had a value."""
    nullable: bool
    notes: list[str] = field(default_factory=list)
    """Why the log will not hold the values exactly as the file does."""
    unsupported: str | None = None
    """Why no property can hold the column (binary values, say)."""


def parse_name(text: str) -> SchemaKey:
    """`vendor/name` as the key of its first version, 1-0-0."""
    parts = text.removeprefix("iglu:").split("/")
    if len(parts) != 2 or not all(parts):
        raise InputError(f"--name {text}: expected vendor/name, e.g. com.acme/orders")
    return SchemaKey.from_parts(parts[0], parts[1], "jsonschema", "1-0-0")


def infer_document(key: SchemaKey, columns: list[ColumnFacts], *, source: str,
                   envelope: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """The schema document for `columns` (minus the `envelope` ones), and the notes to show.
    Raises `InputError` for a column no property can hold."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    notes: list[str] = []
    _check(columns, envelope)
    for column in columns:
        if column.name in envelope:
            continue
        if column.kind is None:
            notes.append(f"column {column.name} has no values: typed as string; check it")
        properties[column.name] = _property(column.kind or "string")
        if not column.nullable and column.kind is not None:
            required.append(column.name)
        notes.extend(f"column {column.name}: {note}" for note in column.notes)
    document: dict[str, Any] = {
        "$schema": DRAFT7,
        "self": {"vendor": key.vendor, "name": key.name, "format": key.format,
                 "version": key.version},
        "description": f"Inferred from {source}; review the types, bounds and required "
                       "properties before registering it.",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return document, notes


def _check(columns: list[ColumnFacts], envelope: tuple[str, ...]) -> None:
    for column in columns:
        if column.unsupported is not None:
            raise InputError(f"column {column.name} {column.unsupported}: no event property "
                             "can hold it; convert or drop the column first")
    clash = sorted(c.name for c in columns if c.name in RESERVED and c.name not in envelope)
    if clash:
        raise InputError(
            f"column {clash[0]} has the name of an envelope column of the log "
            f"({', '.join(clash)}); rename it in the file, or name it with --time-column or "
            "--id-column if it holds the event's time or id")
    lowered: dict[str, str] = {}
    for column in columns:
        other = lowered.setdefault(column.name.lower(), column.name)
        if other != column.name:
            raise InputError(f"columns {other} and {column.name} differ only in case, which "
                             "two properties of a schema may not; rename one")


def _property(kind: str) -> dict[str, Any]:
    if kind in ("date-time", "date"):
        return {"type": "string", "format": kind}
    return {"type": kind}
