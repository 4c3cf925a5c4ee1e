"""Engines for the metadata store: URL normalisation and the SQLite settings it relies on."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa

from flywheel._core.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
BEGIN_OPTION = "flywheel_sqlite_begin"
"""Execution option naming the statement that begins a SQLite transaction."""
WRITE_OPTIONS = {BEGIN_OPTION: "BEGIN IMMEDIATE"}
"""Execution options of writing transactions: on SQLite they take the write lock up front."""


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
