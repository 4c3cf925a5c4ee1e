"""Broken events, as real trackers send them; each one must end up as a bad row."""

from __future__ import annotations

from typing import Any

from flywheel.simulate.config import VENDOR

__all__ = ["EXPECTED_REASON", "MALFORMATIONS", "malform"]

MALFORMATIONS = ("price_as_text", "missing_field", "unknown_version", "unknown_schema")
EXPECTED_REASON = {
    "price_as_text": "schema_violation",  # "12,99": a locale-formatted number
    "missing_field": "schema_violation",  # a tracker that forgot user_id
    "unknown_version": "unknown_schema",  # 1-0-9: a tracker ahead of the schemas
    "unknown_schema": "unknown_schema",  # an event nobody declared
}
"""The bad-row reason each malformation must get when ingested."""


def malform(event: dict[str, Any], kind: int) -> dict[str, Any]:
    """`event` broken the way `MALFORMATIONS[kind]` says (a new dict; the input is kept)."""
    data = dict(event["data"])
    name = MALFORMATIONS[kind]
    broken = {**event, "data": data}
    if name == "price_as_text":
        data["price"] = f"{data['price']:.2f}".replace(".", ",")
    elif name == "missing_field":
        del data["user_id"]
    elif name == "unknown_version":
        broken["schema"] = event["schema"].replace("/1-0-0", "/1-0-9")
    else:
        broken["schema"] = f"iglu:{VENDOR}/checkout_started/jsonschema/1-0-0"
    return broken
