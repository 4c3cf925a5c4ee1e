"""The recovery ledger in SQL: one row per recovered bad row, claimed by the first insert."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from flywheel._core.clock import utc_now
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import SqlCapability


class SqlRecoveries(SqlCapability):
    def claim_recoveries(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Record (bad_row_id, event_id) pairs; returns the ids this call claimed first."""
        first: dict[str, str] = {}
        for bad_row_id, event_id in pairs:
            first.setdefault(bad_row_id, event_id)
        if not first:
            return set()
        now = utc_now()
        # Sorted, so concurrent PostgreSQL writers lock keys in one order and cannot deadlock.
        rows = [
            {"bad_row_id": bad_row_id, "event_id": first[bad_row_id], "recovered_at": now}
            for bad_row_id in sorted(first)
        ]
        table = tables.bad_row_recoveries
        statement = self._db.insert(table).on_conflict_do_nothing().returning(table.c.bad_row_id)
        with self._db.transaction(write=True) as conn:
            return set(conn.execute(statement, rows).scalars())

    def recovered_ids(self) -> set[str]:
        query = sa.select(tables.bad_row_recoveries.c.bad_row_id)
        with self._db.transaction() as conn:
            return set(conn.execute(query).scalars())
