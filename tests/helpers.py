"""Small builders shared by tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAGE_VIEW = "iglu:com.example/page_view/jsonschema/1-0-0"


def write_schema(project_root: Path, key: str, document: dict[str, Any]) -> Path:
    """Write `document` where `key` (iglu:vendor/name/format/version) says it belongs."""
    vendor, name, fmt, version = key.removeprefix("iglu:").split("/")
    path = project_root / "schemas" / vendor / name / fmt / version
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def object_schema(properties: dict[str, Any], required: list[str] | None = None,
                  additional: bool = False) -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": additional,
    }


def page_view(i: int, **envelope: Any) -> dict[str, Any]:
    return {"schema": PAGE_VIEW, "data": {"user_id": f"u{i}", "url": f"https://shop/{i}"},
            **envelope}


VISIT = "iglu:com.acme/visit/jsonschema/1-0-0"


def write_visits_project(root: Path, definitions: str | None = None) -> Path:
    """The feature tests' project: a `visit` schema, a `user_visits` transform over it
    (user_id, pages, seconds, event_time) and, if given, `definitions.py`."""
    write_schema(root, VISIT, object_schema(
        {"user_id": {"type": "string"}, "pages": {"type": "integer"},
         "seconds": {"type": "number"}}, ["user_id"]))
    (root / "transforms").mkdir(exist_ok=True)
    (root / "transforms/user_visits.sql").write_text(
        "-- inputs: com.acme/visit\n-- materialized: incremental\n"
        "select user_id, pages, seconds, event_time from visit\n")
    if definitions is not None:
        (root / "definitions.py").write_text(definitions)
    return root
