"""The in-memory view of registered schemas that ingestion uses: validators and tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from flywheel._core.errors import SchemaDefinitionError
from flywheel.schemas.columns import Column, allows_extra, payload_columns, table_schema
from flywheel.schemas.compat import family_problems, shape_problems
from flywheel.schemas.documents import SchemaDocument
from flywheel.schemas.keys import LogTableRef, SchemaKey
from flywheel.schemas.validation import Validator, compile_validator


@dataclass(slots=True)
class TableSpec:
    """The unified shape of one log table: the union of its minor versions' columns."""

    ref: LogTableRef
    columns: list[Column] = field(default_factory=list)
    with_extra: bool = False

    @property
    def arrow_schema(self) -> pa.Schema:
        return table_schema(self.columns, self.with_extra)

    @property
    def loaded_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.loaded_type) for c in self.columns])

    def add(self, columns: list[Column], extra: bool) -> None:
        known = {c.name for c in self.columns}
        self.columns.extend(c for c in columns if c.name not in known)
        self.with_extra = self.with_extra or extra


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """Everything ingestion needs for one schema version, resolved once."""

    key: SchemaKey
    uri: str
    validate: Validator
    declared: frozenset[str]
    allows_extra: bool
    table: TableSpec


class SchemaRegistry:
    """Registered schema versions, compiled. Lookups by URI are one dict access."""

    def __init__(self, documents: Iterable[SchemaDocument] = ()) -> None:
        self._versions: dict[str, VersionSpec] = {}
        self._tables: dict[LogTableRef, TableSpec] = {}
        self._documents: dict[SchemaKey, SchemaDocument] = {}
        for document in sorted(documents, key=lambda d: d.key):
            self._add(document)

    def _add(self, doc: SchemaDocument) -> None:
        table = self._tables.setdefault(doc.key.table, TableSpec(doc.key.table))
        columns = payload_columns(doc.document)
        extra = allows_extra(doc.document)
        table.add(columns, extra)
        spec = VersionSpec(doc.key, str(doc.key), compile_validator(doc.document),
                           frozenset(c.name for c in columns), extra, table)
        self._versions[spec.uri] = spec
        self._documents[doc.key] = doc

    def get(self, uri: str) -> VersionSpec | None:
        return self._versions.get(uri)

    @property
    def tables(self) -> list[TableSpec]:
        return [self._tables[ref] for ref in sorted(self._tables)]

    def table(self, ref: LogTableRef) -> TableSpec | None:
        return self._tables.get(ref)

    @property
    def keys(self) -> list[SchemaKey]:
        return sorted(self._documents)

    def document(self, key: SchemaKey) -> dict[str, Any]:
        return self._documents[key].document


def check_documents(documents: list[SchemaDocument]) -> None:
    """Raise `SchemaDefinitionError` listing every shape and versioning problem."""
    problems: list[str] = []
    families: dict[tuple[str, str, str], list[tuple[SchemaKey, dict[str, Any]]]] = {}
    for doc in documents:
        problems.extend(shape_problems(doc.key, doc.document))
        families.setdefault(doc.key.family, []).append((doc.key, doc.document))
    for versions in families.values():
        problems.extend(family_problems(versions))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SchemaDefinitionError(problems[0] + more, hint="; ".join(problems[1:4]) or None)
