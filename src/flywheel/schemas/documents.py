"""Reading schema files from a project's `schemas/{vendor}/{name}/{format}/{version}` tree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel._core.errors import SchemaDefinitionError
from flywheel._core.hashing import canonical_json, sha256_text
from flywheel._core.metadata.schemas import SchemaRecord
from flywheel._core.text import read_text, value_problem
from flywheel.schemas.keys import SchemaKey, is_version
from flywheel.schemas.validation import check_document


@dataclass(frozen=True, slots=True)
class SchemaDocument:
    key: SchemaKey
    document: dict[str, Any]
    path: Path | None = None

    def record(self) -> SchemaRecord:
        # Stored as written (property order is column order); hashed in canonical form.
        body = json.dumps(self.document, separators=(",", ":"), ensure_ascii=False)
        k = self.key
        return SchemaRecord(k.vendor, k.name, k.format, k.major, k.minor, k.patch, body,
                            sha256_text(canonical_json(self.document)))

    @classmethod
    def from_record(cls, record: SchemaRecord) -> SchemaDocument:
        key = SchemaKey(record.vendor, record.name, record.format, record.major, record.minor,
                        record.patch)
        return cls(key, json.loads(record.body))


def _key_for(path: Path, root: Path) -> SchemaKey:
    parts = path.relative_to(root).parts
    version = parts[-1].removesuffix(".json") if parts else ""
    if len(parts) != 4 or not is_version(version):
        raise SchemaDefinitionError(
            f"{path}: schema files go in "
            "schemas/{vendor}/{name}/jsonschema/{MAJOR-MINOR-PATCH}",
            hint="e.g. schemas/com.acme/add_to_cart/jsonschema/1-0-0",
        )
    return SchemaKey.from_parts(parts[0], parts[1], parts[2], version)


def _check_self(key: SchemaKey, document: dict[str, Any], path: Path) -> None:
    described = document.get("self")
    if described is None:
        return
    expected = {"vendor": key.vendor, "name": key.name, "format": key.format,
                "version": key.version}
    if not isinstance(described, dict) or {k: described.get(k) for k in expected} != expected:
        raise SchemaDefinitionError(
            f"{path}: its 'self' block does not match its path ({key})",
            hint="make vendor, name, format and version agree with the folder layout",
        )


MAX_DEPTH = 64
"""How deeply a schema document may nest, counting JSON objects and arrays (a property
of an object schema is two levels down: `properties`, then its schema)."""


def _depth(value: object) -> int:
    """Nesting depth of a JSON value, without recursion (a hostile file can be deep)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _not_json(word: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON has not; a validator compiled from
    # them fails on every event.
    raise ValueError(f"{word} is not a JSON value")


def load_document(path: Path, root: Path) -> SchemaDocument:
    key = _key_for(path, root)
    try:
        document = json.loads(read_text(path, SchemaDefinitionError),
                              parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise SchemaDefinitionError(f"{path}: not valid JSON ({exc})") from exc
    except ValueError as exc:  # a number too long to convert (more than 4,300 digits)
        raise SchemaDefinitionError(f"{path}: a value cannot be read: {value_problem(exc)}"
                                    ) from None
    except RecursionError:
        raise SchemaDefinitionError(f"{path}: nested too deeply to read",
                                    hint="flatten the schema, or use $defs and $ref") from None
    if not isinstance(document, dict):
        raise SchemaDefinitionError(f"{path}: a schema must be a JSON object")
    depth = _depth(document)
    if depth > MAX_DEPTH:
        # Validators are compiled to code, whose nesting Python limits: refuse it here.
        raise SchemaDefinitionError(f"{path}: nested {depth} levels deep; at most "
                                    f"{MAX_DEPTH} are supported",
                                    hint="flatten the schema, or use $defs and $ref")
    _check_self(key, document, path)
    problem = check_document(document)
    if problem:
        raise SchemaDefinitionError(f"{path}: not a valid JSON Schema {problem}")
    return SchemaDocument(key, document, path)


def load_folder(root: Path) -> list[SchemaDocument]:
    """Every schema under `root`, sorted by key. Hidden files and READMEs are ignored."""
    if not root.is_dir():
        return []
    documents = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(p.startswith(".") for p in path.relative_to(root).parts):
            continue
        if path.name.lower().startswith("readme"):
            continue
        documents.append(load_document(path, root))
    return sorted(documents, key=lambda d: d.key)
