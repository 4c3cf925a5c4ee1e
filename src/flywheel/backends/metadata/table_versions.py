"""Table versions and cursors in SQL."""

from __future__ import annotations

import sqlalchemy as sa

from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.table_versions import TableVersionRecord
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import SqlCapability


class SqlTableVersions(SqlCapability):
    def add_table_version(self, record: TableVersionRecord) -> None:
        row = {"table_name": record.table, "version": record.version, "mode": record.mode,
               "code_hash": record.code_hash, "inputs": record.inputs,
               "rows_in": record.rows_in, "rows_out": record.rows_out,
               "content_hash": record.content_hash, "created_at": record.created_at or utc_now()}
        statement = self._db.insert(tables.table_versions).on_conflict_do_nothing()
        with self._db.transaction(write=True) as conn:
            added = conn.execute(statement.returning(tables.table_versions.c.version), row)
            if added.first() is None:
                raise FlywheelError(f"version {record.version} of table '{record.table}' "
                                    "is already recorded")

    def table_versions(self, table: str) -> list[TableVersionRecord]:
        t = tables.table_versions
        query = sa.select(t).where(t.c.table_name == table).order_by(t.c.version)
        with self._db.transaction() as conn:
            return [TableVersionRecord(row.table_name, row.version, row.mode, row.code_hash,
                                       row.inputs, row.rows_in, row.rows_out, row.content_hash,
                                       row.created_at) for row in conn.execute(query)]

    def get_cursor(self, name: str) -> str | None:
        query = sa.select(tables.cursors.c.value).where(tables.cursors.c.name == name)
        with self._db.transaction() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def set_cursor(self, name: str, value: str) -> None:
        row = {"name": name, "value": value, "updated_at": utc_now()}
        statement = self._db.insert(tables.cursors)
        statement = statement.on_conflict_do_update(
            index_elements=[tables.cursors.c.name],
            set_={"value": statement.excluded.value,
                  "updated_at": statement.excluded.updated_at})
        with self._db.transaction(write=True) as conn:
            conn.execute(statement, row)
