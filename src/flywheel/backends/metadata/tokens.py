"""The token store in SQL. Scopes are stored as comma-separated text (the token record
refuses a scope with a comma); publishable keys' limits as JSON."""

from __future__ import annotations

import json

import sqlalchemy as sa

from flywheel._core.clock import utc_now
from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.tokens import TokenRecord
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import Row, SqlCapability


class SqlTokenStore(SqlCapability):
    def add_token(self, record: TokenRecord) -> None:
        row = {
            "name": record.name,
            "sha256": record.sha256,
            "scopes": ",".join(record.scopes),
            "created_at": record.created_at or utc_now(),
            "kind": record.kind,
            "limits": _limits(record),
            "public_key": record.key,
        }
        statement = self._db.insert(tables.tokens).on_conflict_do_nothing()
        with self._db.transaction(write=True) as conn:
            added = conn.execute(statement.returning(tables.tokens.c.name), row).first()
        if added is None:
            raise FlywheelError(
                f"token '{record.name}' already exists (by name or by secret)",
                hint="delete it first or choose another name",
            )

    def find_token(self, sha256: str) -> TokenRecord | None:
        query = sa.select(tables.tokens).where(tables.tokens.c.sha256 == sha256)
        with self._db.transaction() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def list_tokens(self) -> list[TokenRecord]:
        query = sa.select(tables.tokens).order_by(tables.tokens.c.name)
        with self._db.transaction() as conn:
            return [_record(row) for row in conn.execute(query)]

    def delete_token(self, name: str) -> bool:
        statement = sa.delete(tables.tokens).where(tables.tokens.c.name == name)
        with self._db.transaction(write=True) as conn:
            return conn.execute(statement).rowcount > 0


def _limits(record: TokenRecord) -> str | None:
    if not (record.app_ids or record.origins or record.rate is not None):
        return None
    return json.dumps({"app_ids": list(record.app_ids), "origins": list(record.origins),
                       "rate": record.rate})


def _record(row: Row) -> TokenRecord:
    scopes = tuple(scope for scope in row.scopes.split(",") if scope)
    limits = json.loads(row.limits) if row.limits else {}
    rate = limits.get("rate")
    return TokenRecord(name=row.name, sha256=row.sha256, scopes=scopes, created_at=row.created_at,
                       kind=row.kind, app_ids=tuple(limits.get("app_ids", ())),
                       origins=tuple(limits.get("origins", ())),
                       rate=None if rate is None else float(rate), key=row.public_key)
