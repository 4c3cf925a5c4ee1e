"""The OpenAPI document, with the project's own event schemas in `POST /v1/events`.

FastAPI describes the routes; this adds what only the project knows: each registered
schema version is one shape an event may take, `{"schema": <its key>, "data": <its JSON
Schema>, "event_id"?, "event_time"?}`, so a client generated from `/openapi.json` (or a
fuzzer) knows exactly which events are accepted. The document is rebuilt when the
registry changes (a running server picks up `flywheel apply` on its own).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from flywheel.api.events import ANY_EVENT, events_body
from flywheel.ingest.prepare import MAX_EVENT_ID
from flywheel.schemas.registry import SchemaRegistry

__all__ = ["EVENT_TIME_FORMAT", "event_schemas", "install_openapi"]

EVENT_TIME_FORMAT = "event-time"
"""A format of this document: an RFC 3339 date-time with a UTC offset, in the years 0001 to
9999 in UTC and no further in the
future than `ingest.max_future_seconds` (JSON Schema's `date-time` cannot say the latter)."""
_INT64 = (-(2**63), 2**63 - 1)
_NOT_JSON_SCHEMA = ("$schema", "$id", "self")


def event_schemas(registry: SchemaRegistry, max_future_seconds: int) -> list[dict[str, Any]]:
    """One OpenAPI schema per registered schema version: the events it accepts."""
    envelope = {
        "event_id": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_EVENT_ID,
                     "description": "Stored at most once: re-sending an event is safe"},
        "event_time": {"type": ["string", "null"], "format": EVENT_TIME_FORMAT,
                       "description": "RFC 3339 with a UTC offset, at most "
                                      f"{max_future_seconds} s ahead of the server's clock; "
                                      "default: when the server received it"}}
    shapes = []
    for key in registry.keys:
        shapes.append({
            "title": str(key), "type": "object", "required": ["schema", "data"],
            "additionalProperties": False,
            "properties": {"schema": {"const": str(key)},
                           "data": _data_schema(registry.document(key)), **envelope}})
    return shapes


def _data_schema(document: dict[str, Any]) -> dict[str, Any]:
    """The schema's document as it applies inside this one: Iglu's `self` and the
    dialect keys dropped, integers bounded to the 64-bit columns of the log."""
    if _has_ref(document):
        # References point inside their own document; here they would dangle.
        return {"type": "object", "description": "see the schema registered under this key"}
    data = {k: v for k, v in copy.deepcopy(document).items() if k not in _NOT_JSON_SCHEMA}
    _bound_integers(data)
    return data


def _has_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_has_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ref(v) for v in node)
    return False


def _bound_integers(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _bound_integers(item)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        node["minimum"] = max(node.get("minimum", _INT64[0]), _INT64[0])
        node["maximum"] = min(node.get("maximum", _INT64[1]), _INT64[1])
    for value in node.values():
        _bound_integers(value)


def install_openapi(app: FastAPI, registry: Callable[[], SchemaRegistry],
                    max_future_seconds: int) -> None:
    """Serve FastAPI's document with the registered event schemas in `/v1/events`."""
    cached: list[tuple[SchemaRegistry, dict[str, Any]]] = []

    def openapi() -> dict[str, Any]:
        current = registry()
        if cached and cached[0][0] is current:
            return cached[0][1]
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        shapes = event_schemas(current, max_future_seconds)
        event = {"anyOf": shapes} if shapes else {**ANY_EVENT, "description": (
            "No schema is registered yet: every event is rejected into bad rows")}
        document["paths"]["/v1/events"]["post"]["requestBody"] = events_body(event)
        cached[:] = [(current, document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
