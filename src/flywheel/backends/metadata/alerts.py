"""Alert history in SQL: the claim of an alert's key with its cooldown decided in the same
transaction, delivery outcomes, and retraining decisions.

Claiming reads (is the key taken? did the action fire within its cooldown?) then writes, so
two claimers of one monitor and action must not interleave: SQLite's writers hold the
database lock (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory lock on the
(monitor, action) pair serialises them, and the unique key backs both up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa

from flywheel._core.metadata.alerts import AlertOutcome, AlertRecord, RetrainingDecision
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import Row, SqlCapability

# Advisory-lock class ("alrt"); the second key is a hash of the monitor and action.
_PG_ALERT_LOCK = 0x616C7274
_KEY = ("monitor", "action", "window_start", "subject")


class SqlAlertStore(SqlCapability):
    def claim_alert(self, record: AlertRecord, *, quiet_since: dt.datetime) -> AlertRecord | None:
        table = tables.alerts
        with self._db.transaction(write=True) as conn:
            _lock_pair(conn, record.monitor, record.action)
            taken = conn.execute(sa.select(table.c.id).where(*(
                table.c[column] == getattr(record, column) for column in _KEY))).first()
            if taken is not None:
                return None
            recent = conn.execute(
                sa.select(table.c.id, table.c.fired_at)
                .where(table.c.monitor == record.monitor, table.c.action == record.action,
                       table.c.outcome != "suppressed", table.c.fired_at > quiet_since)
                .order_by(table.c.fired_at.desc()).limit(1)).first()
            if recent is None:
                claimed = dataclasses.replace(record, outcome="sending", attempts=1, id=None)
            else:
                claimed = dataclasses.replace(
                    record, outcome="suppressed", attempts=0, id=None,
                    detail=record.detail or f"cooldown: alert {recent.id} fired at "
                    f"{recent.fired_at.isoformat()}")
            statement = (self._db.insert(table).on_conflict_do_nothing()
                         .returning(table.c.id))
            alert_id = conn.execute(statement, _alert_row(claimed)).scalar()
            if alert_id is None:
                return None
            return dataclasses.replace(claimed, id=int(alert_id))

    def claim_retry(self, alert_id: int, *, attempts: int) -> bool:
        table = tables.alerts
        with self._db.transaction(write=True) as conn:
            # Compare-and-set: only the caller that saw this attempt count takes the retry.
            done = conn.execute(sa.update(table).where(
                table.c.id == alert_id, table.c.outcome == "failed",
                table.c.attempts == attempts).values(outcome="sending",
                                                     attempts=attempts + 1))
            return bool(done.rowcount == 1)

    def finish_alert(self, alert_id: int, outcome: AlertOutcome, detail: str) -> None:
        table = tables.alerts
        with self._db.transaction(write=True) as conn:
            conn.execute(sa.update(table).where(table.c.id == alert_id)
                         .values(outcome=outcome, detail=detail))

    def alerts(self, *, monitor: str | None = None, action: str | None = None,
               since: dt.datetime | None = None, outcome: AlertOutcome | None = None,
               limit: int = 1000) -> list[AlertRecord]:
        table = tables.alerts
        query = sa.select(table).order_by(table.c.fired_at.desc(), table.c.id.desc())
        for column, wanted in (("monitor", monitor), ("action", action),
                               ("outcome", outcome)):
            if wanted is not None:
                query = query.where(table.c[column] == wanted)
        if since is not None:
            query = query.where(table.c.fired_at >= since)
        with self._db.transaction() as conn:
            return [_alert_record(row) for row in conn.execute(query.limit(limit))]

    def add_decision(self, record: RetrainingDecision) -> RetrainingDecision:
        table = tables.retraining_decisions
        row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
               if f.name != "id"}
        with self._db.transaction(write=True) as conn:
            decision_id = conn.execute(sa.insert(table).returning(table.c.id), row).scalar_one()
        return dataclasses.replace(record, id=int(decision_id))

    def decisions(self, *, policy: str | None = None, limit: int = 1000,
                  ) -> list[RetrainingDecision]:
        table = tables.retraining_decisions
        query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
        if policy is not None:
            query = query.where(table.c.policy == policy)
        with self._db.transaction() as conn:
            return [RetrainingDecision(**{f.name: getattr(row, f.name)
                                          for f in dataclasses.fields(RetrainingDecision)})
                    for row in conn.execute(query)]


def _lock_pair(conn: sa.Connection, monitor: str, action: str) -> None:
    """Serialise claimers of one monitor and action until the end of the transaction."""
    if conn.dialect.name != "postgresql":
        return  # SQLite writers hold the database's write lock already
    digest = hashlib.sha256(f"{monitor}\x1f{action}".encode()).digest()
    key = int.from_bytes(digest[:4], "big", signed=True)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_ALERT_LOCK, key)))


def _alert_row(record: AlertRecord) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)
            if f.name != "id"}


def _alert_record(row: Row) -> AlertRecord:
    return AlertRecord(**{f.name: getattr(row, f.name) for f in dataclasses.fields(AlertRecord)})
