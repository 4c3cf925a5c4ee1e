"""The metadata tables (SQLAlchemy Core). Change them only together with a new migration."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

# Deterministic constraint names, so migrations can refer to them on every dialect.
metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware in UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        value = value.astimezone(dt.UTC)
        # SQLite keeps no offset, only the wall time: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


schemas = sa.Table(
    "schemas",
    metadata,
    sa.Column("vendor", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("format", sa.String(64), primary_key=True),
    sa.Column("major", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("minor", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("registered_at", UtcDateTime, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.Text, nullable=False),  # comma-separated; scopes hold no commas
    sa.Column("created_at", UtcDateTime, nullable=False),
)

bad_row_recoveries = sa.Table(
    "bad_row_recoveries",
    metadata,
    sa.Column("bad_row_id", sa.String(255), primary_key=True),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("recovered_at", UtcDateTime, nullable=False),
)

table_versions = sa.Table(
    "table_versions",
    metadata,
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("rows_in", sa.BigInteger, nullable=False),
    sa.Column("rows_out", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

SCHEMA_KEY = tuple(column for column in schemas.primary_key.columns)
"""The columns of a schema version's identity, in key order."""
