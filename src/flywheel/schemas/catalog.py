"""Registering schema versions: versions are immutable, whatever backend stores them.

The catalog only stores and fetches; the rule is kept here. A batch is checked against what
is registered before anything is written, so a refused batch stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flywheel._core.errors import SchemaDefinitionError
from flywheel._core.metadata.schemas import SchemaCatalog, SchemaKey, SchemaRecord


def register_schemas(catalog: SchemaCatalog, records: Iterable[SchemaRecord]) -> int:
    """Register new schema versions; returns how many were new.

    A version registered before with the same sha256 is skipped; one with another sha256
    raises `SchemaDefinitionError`, and then nothing of the batch is registered.
    """
    unique = _by_key(records)
    if not unique:
        return 0
    _check_unchanged(unique, catalog.get_schemas(unique))
    added = catalog.insert_schemas(list(unique.values()))
    raced = [key for key in unique if key not in added]
    # A writer in another process may have registered one of these between the check and
    # the insert; its content must be ours too, or the refusal is only late, never silent.
    _check_unchanged({key: unique[key] for key in raced}, catalog.get_schemas(raced))
    return len(added)


def _by_key(records: Iterable[SchemaRecord]) -> dict[SchemaKey, SchemaRecord]:
    unique: dict[SchemaKey, SchemaRecord] = {}
    for record in records:
        seen = unique.setdefault(record.version_key, record)
        if seen.sha256 != record.sha256:
            raise SchemaDefinitionError(f"schema {record.key} is given twice, with two contents")
    return unique


def _check_unchanged(given: Mapping[SchemaKey, SchemaRecord],
                     stored: Mapping[SchemaKey, SchemaRecord]) -> None:
    for key in sorted(given):
        record, known = given[key], stored.get(key)
        if known is not None and known.sha256 != record.sha256:
            raise SchemaDefinitionError(
                f"schema {record.key} is already registered with other content",
                hint="schemas are immutable: publish a new version instead",
            )
