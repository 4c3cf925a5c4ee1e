"""The schema catalog in SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from flywheel._core.clock import utc_now
from flywheel._core.errors import SchemaDefinitionError
from flywheel._core.metadata.schemas import SchemaKey, SchemaRecord
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import CHUNK, Row, SqlCapability


class SqlSchemaCatalog(SqlCapability):
    def insert_schemas(self, records: Sequence[SchemaRecord]) -> set[SchemaKey]:
        if not records:
            return set()
        now = utc_now()
        # Sorted, so concurrent PostgreSQL writers lock keys in one order and cannot deadlock.
        rows = [_row(record, now) for record in sorted(records, key=lambda r: r.version_key)]
        statement = self._db.insert(tables.schemas).on_conflict_do_nothing()
        with self._db.transaction(write=True) as conn:
            inserted = {_key(row) for row in
                        conn.execute(statement.returning(*tables.SCHEMA_KEY), rows).all()}
            # A key another writer stored first with other content undoes the whole batch,
            # in this transaction: a batch is stored whole or not at all.
            given = {r.version_key: r.sha256 for r in records if r.version_key not in inserted}
            key = sa.tuple_(*tables.SCHEMA_KEY)
            for chunk in _chunks(sorted(given)):
                query = sa.select(tables.schemas).where(key.in_(chunk))
                for row in conn.execute(query):
                    if row.sha256 != given[_key(row)]:
                        raise SchemaDefinitionError(
                            f"schema {_record(row).key} is already registered with other "
                            "content", hint="schemas are immutable: publish a new version "
                            "instead")
        return inserted

    def get_schemas(self, keys: Iterable[SchemaKey]) -> dict[SchemaKey, SchemaRecord]:
        found: dict[SchemaKey, SchemaRecord] = {}
        key = sa.tuple_(*tables.SCHEMA_KEY)
        with self._db.transaction() as conn:
            for chunk in _chunks(sorted(set(keys))):
                query = sa.select(tables.schemas).where(key.in_(chunk))
                found.update((_key(row), _record(row)) for row in conn.execute(query))
        return found

    def list_schemas(self) -> list[SchemaRecord]:
        query = sa.select(tables.schemas).order_by(*tables.SCHEMA_KEY)
        with self._db.transaction() as conn:
            return [_record(row) for row in conn.execute(query)]


def _chunks(keys: list[SchemaKey]) -> Iterator[list[SchemaKey]]:
    for start in range(0, len(keys), CHUNK):
        yield keys[start:start + CHUNK]


def _key(row: Row) -> SchemaKey:
    return (row.vendor, row.name, row.format, row.major, row.minor, row.patch)


def _row(record: SchemaRecord, now: Any) -> dict[str, Any]:
    return {"vendor": record.vendor, "name": record.name, "format": record.format,
            "major": record.major, "minor": record.minor, "patch": record.patch,
            "body": record.body, "sha256": record.sha256,
            "registered_at": record.registered_at or now}


def _record(row: Row) -> SchemaRecord:
    return SchemaRecord(vendor=row.vendor, name=row.name, format=row.format, major=row.major,
                        minor=row.minor, patch=row.patch, body=row.body, sha256=row.sha256,
                        registered_at=row.registered_at)
