"""The engine and transaction core every metadata capability shares: URL normalisation,
the SQLite settings it relies on, transactions, and database errors as `BackendError`."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flywheel._core.errors import BackendError, ConfigError
from flywheel._core.text import first_line

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
BEGIN_OPTION = "flywheel_sqlite_begin"
"""Execution option naming the statement that begins a SQLite transaction."""
WRITE_OPTIONS = {BEGIN_OPTION: "BEGIN IMMEDIATE"}
"""Execution options of writing transactions: on SQLite they take the write lock up front."""
CHUNK = 500
"""Keys per `IN` query: well under SQLite's bound-parameter limit (6 columns per key)."""

Row: TypeAlias = sa.Row[*tuple[Any, ...]]
Insert: TypeAlias = postgresql.Insert | sqlite.Insert


class Database:
    """One metadata database: its engines, made on first use, and its transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sa_url = normalise_url(url)
        self._engine: sa.Engine | None = None
        self._writer: sa.Engine | None = None
        self._engine_lock = threading.Lock()  # first use may come from several threads at once
        self._first_use: Callable[[], None] | None = None
        self._first_use_lock = threading.Lock()
        self._first_use_thread: int | None = None

    @property
    def safe_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def insert(self, table: sa.Table) -> Insert:
        """The dialect's INSERT, which has ON CONFLICT."""
        if self.sa_url.get_backend_name() == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def before_first_use(self, step: Callable[[], None]) -> None:
        """Run `step` (a migration) once, before the first transaction that follows; the
        transactions `step` opens itself run, while those of other threads wait for it."""
        self._first_use = step

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """One transaction; database failures leave it as `BackendError`."""
        if self._first_use is not None and self._first_use_thread != threading.get_ident():
            self._run_first_use()
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

    def _run_first_use(self) -> None:
        with self._first_use_lock:
            step = self._first_use
            if step is None:
                return  # another thread ran it while this one waited
            self._first_use_thread = threading.get_ident()
            try:
                step()  # if it fails, the next transaction tries again
                self._first_use = None
            finally:
                self._first_use_thread = None

    def dispose(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._writer = None

    def make_parent_folder(self) -> None:
        """Create the folder of a SQLite file (before the first migration)."""
        path = self._sqlite_path()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(
                f"metadata store {self.safe_url}: cannot create its folder ({exc.strerror})"
            ) from exc

    def _engines(self) -> tuple[sa.Engine, sa.Engine]:
        """The engine for reading and its twin (same pool) for writing, made on first use."""
        with self._engine_lock:
            if self._engine is None or self._writer is None:
                self._engine = create_engine(self.sa_url)
                self._writer = self._engine.execution_options(**WRITE_OPTIONS)
            return self._engine, self._writer

    def _backend_error(self, exc: sa.exc.DBAPIError) -> BackendError:
        reason = first_line(str(exc.orig), None)
        password = self.sa_url.password
        if password:
            reason = reason.replace(str(password), "***")
        if _is_missing_table(exc) or self._sqlite_file_missing():
            return BackendError(
                f"metadata store {self.safe_url} is not migrated ({reason})",
                hint="migrate it first (flywheel apply)",
            )
        return BackendError(
            f"metadata store {self.safe_url} is unavailable: {reason}",
            hint="check that the database is running and the URL is right",
        )

    def _sqlite_path(self) -> Path | None:
        database = self.sa_url.database
        if self.sa_url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database)

    def _sqlite_file_missing(self) -> bool:
        path = self._sqlite_path()
        return path is not None and not path.exists()


class SqlCapability:
    """Base of each capability's SQL implementation: all of them work on one `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db


def normalise_url(url: str) -> sa.URL:
    """The SQLAlchemy URL for `url`; `postgres://` and `postgresql://` use psycopg 3."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid metadata URL {url!r}") from exc
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(f"metadata URL {shown} is not SQLite or PostgreSQL")
    return parsed


def create_engine(url: sa.URL) -> sa.Engine:
    """An engine for `url` (connects on first use, not here)."""
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    if "connect_timeout" in url.query:
        connect_args = {}
    # pre_ping: a long-lived server outlives database restarts without a failed request.
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # sqlite3 would not BEGIN before DDL (no transactional migrations) and would BEGIN
    # deferred before writes; SQLAlchemy emits BEGIN instead, in _sqlite_on_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch a database to write-ahead logging once (the mode is stored in the file)."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        # SQLite answers "database is locked" at once, without the busy handler, when
        # another connection of a fresh database holds a lock during the switch: retry.
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # Writers BEGIN IMMEDIATE: a deferred transaction that reads, then writes, fails at once
    # with "database is locked" when another writer got in between; busy_timeout cannot help.
    conn.exec_driver_sql(conn.get_execution_options().get(BEGIN_OPTION, "BEGIN"))


def _is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    # 42P01 is PostgreSQL's undefined_table; sqlite3 has no codes, only the message.
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)

