"""The metadata store on SQLAlchemy: SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite

from flywheel._core.clock import utc_now
from flywheel._core.errors import BackendError, FlywheelError, SchemaDefinitionError
from flywheel._core.metadata import (
    AliasChange,
    MetricPoint,
    ModelVersionRecord,
    RunArtifactRecord,
    RunDetails,
    RunQuery,
    RunRecord,
    RunStatus,
    SchemaRecord,
    TableVersionRecord,
    TokenRecord,
)
from flywheel._core.text import first_line
from flywheel.backends.metadata import models, runs, tables
from flywheel.backends.metadata.engine import WRITE_OPTIONS, create_engine, normalise_url

_MIGRATIONS = Path(__file__).with_name("migrations")
_ALEMBIC_LOCK = threading.Lock()
# Advisory-lock key ("flyw") serialising migrations across processes; it is database-wide,
# so migrations of different schemas wait for each other too, which is harmless.
_PG_MIGRATION_LOCK = 0x666C7977
# Keys per `IN` query: well under SQLite's bound-parameter limit (6 columns per key).
_CHUNK = 500

SchemaKey = tuple[str, str, str, int, int, int]
_Row: TypeAlias = sa.Row[*tuple[Any, ...]]


class SqlMetadataStore:
    """Schemas, tokens, recoveries, table versions, runs and the model registry in SQL
    tables, migrated with Alembic."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sa_url = normalise_url(url)
        self._engine: sa.Engine | None = None
        self._writer: sa.Engine | None = None
        self._engine_lock = threading.Lock()  # first use may come from several threads at once

    # Lifecycle ---------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the tables to the newest revision (safe to repeat)."""
        self._make_parent_folder()
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option("path_separator", "os")
        # Alembic's `context` and `op` are process-global proxies, so one migration at a
        # time per process; taken before the database lock, so the two cannot deadlock.
        with _ALEMBIC_LOCK, self._transaction(write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            # Alembic runs inside this transaction, on this connection (same search_path).
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._writer = None

    # Schemas -----------------------------------------------------------------
    def add_schemas(self, records: Iterable[SchemaRecord]) -> int:
        """Register new schema versions; returns how many were new."""
        unique = _by_key(records)
        if not unique:
            return 0
        now = utc_now()
        # Sorted, so concurrent PostgreSQL writers lock keys in one order and cannot deadlock.
        rows = [_schema_row(unique[key], now) for key in sorted(unique)]
        key_columns = tables.SCHEMA_KEY
        with self._transaction(write=True) as conn:
            statement = self._insert(tables.schemas).on_conflict_do_nothing()
            inserted = conn.execute(statement.returning(*key_columns), rows).all()
            new = {_schema_key(row) for row in inserted}
            known = [unique[key] for key in sorted(unique) if key not in new]
            _check_unchanged(conn, known)
        return len(new)

    def list_schemas(self) -> list[SchemaRecord]:
        query = sa.select(tables.schemas).order_by(*tables.SCHEMA_KEY)
        with self._transaction() as conn:
            return [_schema_record(row) for row in conn.execute(query)]

    # Tokens ------------------------------------------------------------------
    def add_token(self, record: TokenRecord) -> None:
        if any("," in scope for scope in record.scopes):
            raise ValueError(f"token scopes cannot contain commas: {record.scopes!r}")
        row = {
            "name": record.name,
            "sha256": record.sha256,
            "scopes": ",".join(record.scopes),
            "created_at": record.created_at or utc_now(),
            "kind": record.kind,
            "limits": _token_limits(record),
            "public_key": record.key,
        }
        statement = self._insert(tables.tokens).on_conflict_do_nothing()
        with self._transaction(write=True) as conn:
            added = conn.execute(statement.returning(tables.tokens.c.name), row).first()
        if added is None:
            raise FlywheelError(
                f"token '{record.name}' already exists (by name or by secret)",
                hint="delete it first or choose another name",
            )

    def find_token(self, sha256: str) -> TokenRecord | None:
        query = sa.select(tables.tokens).where(tables.tokens.c.sha256 == sha256)
        with self._transaction() as conn:
            row = conn.execute(query).first()
        return None if row is None else _token_record(row)

    def list_tokens(self) -> list[TokenRecord]:
        query = sa.select(tables.tokens).order_by(tables.tokens.c.name)
        with self._transaction() as conn:
            return [_token_record(row) for row in conn.execute(query)]

    def delete_token(self, name: str) -> bool:
        statement = sa.delete(tables.tokens).where(tables.tokens.c.name == name)
        with self._transaction(write=True) as conn:
            return conn.execute(statement).rowcount > 0

    # Bad-row recovery ----------------------------------------------------------
    def claim_recoveries(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Record (bad_row_id, event_id) pairs; returns the ids this call claimed first."""
        first: dict[str, str] = {}
        for bad_row_id, event_id in pairs:
            first.setdefault(bad_row_id, event_id)
        if not first:
            return set()
        now = utc_now()
        # Sorted for the same reason as in add_schemas: one lock order for every caller.
        rows = [
            {"bad_row_id": bad_row_id, "event_id": first[bad_row_id], "recovered_at": now}
            for bad_row_id in sorted(first)
        ]
        table = tables.bad_row_recoveries
        statement = self._insert(table).on_conflict_do_nothing().returning(table.c.bad_row_id)
        with self._transaction(write=True) as conn:
            return set(conn.execute(statement, rows).scalars())

    def recovered_ids(self) -> set[str]:
        query = sa.select(tables.bad_row_recoveries.c.bad_row_id)
        with self._transaction() as conn:
            return set(conn.execute(query).scalars())

    # Derived-table versions ------------------------------------------------------
    def add_table_version(self, record: TableVersionRecord) -> None:
        row = {"table_name": record.table, "version": record.version, "mode": record.mode,
               "code_hash": record.code_hash, "inputs": record.inputs,
               "rows_in": record.rows_in, "rows_out": record.rows_out,
               "content_hash": record.content_hash, "created_at": record.created_at or utc_now()}
        statement = self._insert(tables.table_versions).on_conflict_do_nothing()
        with self._transaction(write=True) as conn:
            added = conn.execute(statement.returning(tables.table_versions.c.version), row)
            if added.first() is None:
                raise FlywheelError(f"version {record.version} of table '{record.table}' "
                                    "is already recorded")

    def table_versions(self, table: str) -> list[TableVersionRecord]:
        t = tables.table_versions
        query = sa.select(t).where(t.c.table_name == table).order_by(t.c.version)
        with self._transaction() as conn:
            return [TableVersionRecord(row.table_name, row.version, row.mode, row.code_hash,
                                       row.inputs, row.rows_in, row.rows_out, row.content_hash,
                                       row.created_at) for row in conn.execute(query)]

    # Cursors ---------------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        query = sa.select(tables.cursors.c.value).where(tables.cursors.c.name == name)
        with self._transaction() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def set_cursor(self, name: str, value: str) -> None:
        row = {"name": name, "value": value, "updated_at": utc_now()}
        statement = self._insert(tables.cursors)
        statement = statement.on_conflict_do_update(
            index_elements=[tables.cursors.c.name],
            set_={"value": statement.excluded.value,
                  "updated_at": statement.excluded.updated_at})
        with self._transaction(write=True) as conn:
            conn.execute(statement, row)

    # Runs ------------------------------------------------------------------------
    def add_run(self, record: RunRecord, tags: Mapping[str, str] | None = None) -> None:
        with self._transaction(write=True) as conn:
            runs.add_run(conn, self._insert, record)
            runs.set_tags(conn, self._insert, record.id, tags or {})

    def end_run(self, run_id: str, status: RunStatus, ended_at: dt.datetime) -> None:
        with self._transaction(write=True) as conn:
            runs.end_run(conn, run_id, status, ended_at)

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        with self._transaction() as conn:
            return runs.get_runs(conn, run_ids)

    def find_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        with self._transaction() as conn:
            return runs.find_run_ids(conn, prefix, limit)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._transaction(write=True) as conn:
            runs.log_params(conn, self._insert, run_id, params)

    def log_metrics(self, points: Sequence[MetricPoint]) -> None:
        with self._transaction(write=True) as conn:
            runs.log_metrics(conn, self._insert, points)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._transaction(write=True) as conn:
            runs.set_tags(conn, self._insert, run_id, tags)

    def add_run_artifacts(self, records: Sequence[RunArtifactRecord]) -> None:
        with self._transaction(write=True) as conn:
            runs.add_run_artifacts(conn, self._insert, records)

    def add_run_inputs(self, run_id: str, table_versions: Mapping[str, int]) -> None:
        with self._transaction(write=True) as conn:
            runs.add_run_inputs(conn, self._insert, run_id, table_versions)

    def run_details(self, run_ids: Sequence[str]) -> dict[str, RunDetails]:
        with self._transaction() as conn:
            return runs.run_details(conn, run_ids)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        with self._transaction() as conn:
            return runs.metric_history(conn, run_id, key)

    def search_runs(self, query: RunQuery) -> list[RunRecord]:
        with self._transaction() as conn:
            return runs.search_runs(conn, query)

    # Model registry ----------------------------------------------------------------
    def add_model_version(self, record: ModelVersionRecord) -> ModelVersionRecord:
        with self._transaction(write=True) as conn:
            return models.add_model_version(conn, record)

    def model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        with self._transaction() as conn:
            return models.model_versions(conn, name)

    def get_model_version(self, name: str, version: int) -> ModelVersionRecord | None:
        with self._transaction() as conn:
            return models.get_model_version(conn, name, version)

    def set_alias(self, name: str, alias: str, version: int | None, *, reason: str | None,
                  actor: str | None) -> AliasChange:
        with self._transaction(write=True) as conn:
            return models.set_alias(conn, self._insert, name, alias, version, reason, actor)

    def aliases(self, name: str | None = None) -> dict[tuple[str, str], int]:
        with self._transaction() as conn:
            return models.aliases(conn, name)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        with self._transaction() as conn:
            return models.alias_history(conn, name, alias)

    # Internals ---------------------------------------------------------------
    @property
    def _safe_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _engines(self) -> tuple[sa.Engine, sa.Engine]:
        """The engine for reading and its twin (same pool) for writing, made on first use."""
        with self._engine_lock:
            if self._engine is None or self._writer is None:
                self._engine = create_engine(self._sa_url)
                self._writer = self._engine.execution_options(**WRITE_OPTIONS)
            return self._engine, self._writer

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self._sa_url.get_backend_name() == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """One transaction; database failures leave it as `BackendError`."""
        reader, writer = self._engines()
        try:
            with (writer if write else reader).begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            # Other DBAPI errors (integrity, bad SQL) are bugs here, not the database's state.
            unavailable = isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
            if unavailable or _is_missing_table(exc):
                raise self._backend_error(exc) from exc
            raise

    def _backend_error(self, exc: sa.exc.DBAPIError) -> BackendError:
        reason = first_line(str(exc.orig), None)
        password = self._sa_url.password
        if password:
            reason = reason.replace(str(password), "***")
        if _is_missing_table(exc) or self._sqlite_file_missing():
            return BackendError(
                f"metadata store {self._safe_url} is not migrated ({reason})",
                hint="migrate it first (flywheel apply)",
            )
        return BackendError(
            f"metadata store {self._safe_url} is unavailable: {reason}",
            hint="check that the database is running and the URL is right",
        )

    def _sqlite_path(self) -> Path | None:
        database = self._sa_url.database
        if self._sa_url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database)

    def _sqlite_file_missing(self) -> bool:
        path = self._sqlite_path()
        return path is not None and not path.exists()

    def _make_parent_folder(self) -> None:
        path = self._sqlite_path()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"metadata store {self._safe_url}: cannot create its folder ({exc.strerror})"
            ) from exc


def _by_key(records: Iterable[SchemaRecord]) -> dict[SchemaKey, SchemaRecord]:
    unique: dict[SchemaKey, SchemaRecord] = {}
    for record in records:
        key = _record_key(record)
        seen = unique.setdefault(key, record)
        if seen.sha256 != record.sha256:
            raise SchemaDefinitionError(f"schema {record.key} is given twice, with two contents")
    return unique


def _check_unchanged(conn: sa.Connection, known: Sequence[SchemaRecord]) -> None:
    """Raise if a registered version would change; schemas are immutable."""
    key = sa.tuple_(*tables.SCHEMA_KEY)
    for start in range(0, len(known), _CHUNK):
        chunk = {_record_key(record): record for record in known[start : start + _CHUNK]}
        query = sa.select(*tables.SCHEMA_KEY, tables.schemas.c.sha256).where(key.in_(list(chunk)))
        for row in conn.execute(query):
            record = chunk[_schema_key(row)]
            if row.sha256 != record.sha256:
                raise SchemaDefinitionError(
                    f"schema {record.key} is already registered with other content",
                    hint="schemas are immutable: publish a new version instead",
                )


def _record_key(record: SchemaRecord) -> SchemaKey:
    return (record.vendor, record.name, record.format, record.major, record.minor, record.patch)


def _schema_key(row: _Row) -> SchemaKey:
    return (row.vendor, row.name, row.format, row.major, row.minor, row.patch)


def _schema_row(record: SchemaRecord, now: dt.datetime) -> dict[str, Any]:
    return {
        "vendor": record.vendor,
        "name": record.name,
        "format": record.format,
        "major": record.major,
        "minor": record.minor,
        "patch": record.patch,
        "body": record.body,
        "sha256": record.sha256,
        "registered_at": record.registered_at or now,
    }


def _schema_record(row: _Row) -> SchemaRecord:
    return SchemaRecord(
        vendor=row.vendor,
        name=row.name,
        format=row.format,
        major=row.major,
        minor=row.minor,
        patch=row.patch,
        body=row.body,
        sha256=row.sha256,
        registered_at=row.registered_at,
    )


def _token_limits(record: TokenRecord) -> str | None:
    if not (record.app_ids or record.origins or record.rate is not None):
        return None
    return json.dumps({"app_ids": list(record.app_ids), "origins": list(record.origins),
                       "rate": record.rate})


def _token_record(row: _Row) -> TokenRecord:
    scopes = tuple(scope for scope in row.scopes.split(",") if scope)
    limits = json.loads(row.limits) if row.limits else {}
    rate = limits.get("rate")
    return TokenRecord(name=row.name, sha256=row.sha256, scopes=scopes, created_at=row.created_at,
                       kind=row.kind, app_ids=tuple(limits.get("app_ids", ())),
                       origins=tuple(limits.get("origins", ())),
                       rate=None if rate is None else float(rate), key=row.public_key)


def _is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    # 42P01 is PostgreSQL's undefined_table; sqlite3 has no codes, only the message.
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)


