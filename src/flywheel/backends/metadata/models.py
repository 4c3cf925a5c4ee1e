"""The model store in SQL: model versions, aliases and the aliases' audit trail.

Allocating a version and moving an alias both read, then write; two writers of one model
must not interleave. SQLite's writers take the database lock up front (BEGIN IMMEDIATE);
on PostgreSQL a transaction-scoped advisory lock on the model's name serialises them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.models import AliasChange, ModelVersionRecord
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import Row, SqlCapability

# Advisory-lock class ("modl"); the second key is a hash of the model's name.
_PG_MODEL_LOCK = 0x6D6F646C


class SqlModelStore(SqlCapability):
    def add_model_version(self, record: ModelVersionRecord) -> ModelVersionRecord:
        with self._db.transaction(write=True) as conn:
            _lock_model(conn, record.name)
            versions = tables.model_versions
            newest = conn.execute(sa.select(sa.func.max(versions.c.version))
                                  .where(versions.c.name == record.name)).scalar()
            stored = ModelVersionRecord(
                name=record.name, version=(newest or 0) + 1, run_id=record.run_id,
                artifact_sha256=record.artifact_sha256, flavor=record.flavor,
                signature=record.signature, metrics=record.metrics, lineage=record.lineage,
                created_at=record.created_at or utc_now())
            conn.execute(sa.insert(versions), _version_row(stored))
            return stored

    def model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        with self._db.transaction() as conn:
            versions = tables.model_versions
            query = sa.select(versions).order_by(versions.c.name, versions.c.version)
            if name is not None:
                query = query.where(versions.c.name == name)
            return [_version_record(row) for row in conn.execute(query)]

    def get_model_version(self, name: str, version: int) -> ModelVersionRecord | None:
        with self._db.transaction() as conn:
            return _get_version(conn, name, version)

    def set_alias(self, name: str, alias: str, version: int | None, *, reason: str | None,
                  actor: str | None) -> AliasChange:
        with self._db.transaction(write=True) as conn:
            _lock_model(conn, name)
            aliases = tables.model_aliases
            where = sa.and_(aliases.c.name == name, aliases.c.alias == alias)
            current = conn.execute(sa.select(aliases.c.version).where(where)).scalar()
            change = AliasChange(name, alias, current, version, reason, utc_now(), actor)
            if version is None:
                if current is None:
                    raise FlywheelError(f"model '{name}' has no alias '{alias}'")
                conn.execute(sa.delete(aliases).where(where))
            else:
                if _get_version(conn, name, version) is None:
                    raise FlywheelError(f"model '{name}' has no version {version}",
                                        hint=f"see `flywheel models show {name}`")
                if current == version:
                    return change  # nothing moved: the audit trail records changes only
                statement = self._db.insert(aliases)
                statement = statement.on_conflict_do_update(
                    index_elements=[aliases.c.name, aliases.c.alias],
                    set_={"version": statement.excluded.version})
                conn.execute(statement, {"name": name, "alias": alias, "version": version})
            conn.execute(sa.insert(tables.model_alias_changes), {
                "name": name, "alias": alias, "from_version": current, "to_version": version,
                "reason": reason, "at": change.at, "actor": actor})
            return change

    def aliases(self, name: str | None = None) -> dict[tuple[str, str], int]:
        with self._db.transaction() as conn:
            table = tables.model_aliases
            query = sa.select(table).order_by(table.c.name, table.c.alias)
            if name is not None:
                query = query.where(table.c.name == name)
            return {(row.name, row.alias): row.version for row in conn.execute(query)}

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        with self._db.transaction() as conn:
            table = tables.model_alias_changes
            query = sa.select(table).where(table.c.name == name).order_by(table.c.id)
            if alias is not None:
                query = query.where(table.c.alias == alias)
            return [AliasChange(row.name, row.alias, row.from_version, row.to_version, row.reason,
                                row.at, row.actor) for row in conn.execute(query)]


def _lock_model(conn: sa.Connection, name: str) -> None:
    """Serialise writers of one model until the end of the transaction."""
    if conn.dialect.name != "postgresql":
        return  # SQLite writers hold the database's write lock already
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MODEL_LOCK, key)))


def _get_version(conn: sa.Connection, name: str, version: int) -> ModelVersionRecord | None:
    versions = tables.model_versions
    row = conn.execute(sa.select(versions).where(versions.c.name == name,
                                                 versions.c.version == version)).first()
    return None if row is None else _version_record(row)


def _version_row(record: ModelVersionRecord) -> dict[str, Any]:
    return {"name": record.name, "version": record.version, "run_id": record.run_id,
            "artifact_sha256": record.artifact_sha256, "flavor": record.flavor,
            "signature": record.signature, "metrics": record.metrics,
            "lineage": record.lineage, "created_at": record.created_at}


def _version_record(row: Row) -> ModelVersionRecord:
    return ModelVersionRecord(name=row.name, version=row.version, run_id=row.run_id,
                              artifact_sha256=row.artifact_sha256, flavor=row.flavor,
                              signature=row.signature, metrics=row.metrics,
                              lineage=row.lineage, created_at=row.created_at)

