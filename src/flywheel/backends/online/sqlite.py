"""The SQLite online store: one table, (view, key) -> msgpack values and event time."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgspec

from flywheel._core.errors import BackendError, ConfigError
from flywheel._core.online import OnlineRow, OnlineValue
from flywheel.backends.online import _codec

BUSY_TIMEOUT_MS = 30_000
MMAP_BYTES = 256 * 1024 * 1024
"""How much of the file each connection reads through a memory map (address space, not
memory: the pages are the OS's file cache). A serving lookup then costs no read call and
no copy into SQLite's own page cache: about a sixth less per key on 200,000 rows."""
_PREFIX = "sqlite:///"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online (
    view TEXT NOT NULL,
    key TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (view, key)
) WITHOUT ROWID
"""
# `>=`: of two rows with the same event time the later put wins, as in the Redis store.
_UPSERT = """
INSERT INTO online (view, key, event_time, payload) VALUES (?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE
SET event_time = excluded.event_time, payload = excluded.payload
WHERE excluded.event_time >= online.event_time
"""
_SELECT = """
SELECT key, event_time, payload FROM online
WHERE view = ? AND key IN (SELECT value FROM json_each(?))
"""
_SELECT_ONE = "SELECT key, event_time, payload FROM online WHERE view = ? AND key = ?"


def database_path(url: str) -> Path:
    """The file of a `sqlite:////abs/path` or `sqlite:///relative/path` URL."""
    rest = url[len(_PREFIX):] if url.startswith(_PREFIX) else ""
    if not rest or rest.startswith(":memory:") or "?" in rest:
        raise ConfigError(f"online store URL {url!r} is not sqlite:///path/to/file.db")
    return Path(rest).absolute()


class SqliteOnlineStore:
    """Online store in one SQLite file (WAL), with one connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._path = database_path(url)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._ready = False

    def put(self, view: str, rows: Sequence[OnlineRow]) -> int:
        params = [
            (view, row.key, _codec.to_micros(row.event_time), _codec.encode_values(row.values))
            for row in rows
        ]
        if not params:
            return 0
        with self._transaction("BEGIN IMMEDIATE") as conn:
            # Ignored (older) rows do not count as changes, so this is rows actually written.
            return conn.executemany(_UPSERT, params).rowcount

    def get(self, requests: Sequence[tuple[str, Sequence[str]]]
            ) -> list[list[OnlineValue | None]]:
        if not any(keys for _, keys in requests):
            return [[None] * len(keys) for _, keys in requests]
        if len(requests) == 1:
            # One statement reads one snapshot by itself: no explicit transaction needed.
            with self._errors():
                return [_read(self._connection(), *requests[0])]
        # One read transaction: every view is answered from the same snapshot.
        with self._transaction("BEGIN") as conn:
            return [_read(conn, view, keys) for view, keys in requests]

    def drop(self, view: str) -> None:
        with self._transaction("BEGIN IMMEDIATE") as conn:
            conn.execute("DELETE FROM online WHERE view = ?", (view,))

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._errors():
            conn = self._connection()
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise BackendError(
                f"online store {self._path} failed: {' '.join(str(exc).split())}"
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if not self._ready:
                self._create()
            # isolation_level=None: transactions are begun explicitly, in _transaction.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            self._connections.append(conn)
            self._local.conn = conn
        return conn

    def _create(self) -> None:
        """Create the folder, the file (in WAL mode) and the table on first use."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create the folder of online store {self._path}: "
                               f"{exc.strerror}") from exc
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute(_SCHEMA)
        finally:
            conn.close()
        self._ready = True


def _read(conn: sqlite3.Connection, view: str, keys: Sequence[str]
          ) -> list[OnlineValue | None]:
    if not keys:
        return []
    if len(keys) == 1:  # the common serving read: a plain primary-key lookup
        rows = conn.execute(_SELECT_ONE, (view, keys[0]))
    else:
        rows = conn.execute(_SELECT, (view, msgspec.json.encode(list(keys))))
    found = {key: OnlineValue(_codec.decode_values(payload), _codec.from_micros(micros))
             for key, micros, payload in rows}
    return [found.get(key) for key in keys]


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging (the mode is stored in the file, once)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        # A fresh file being switched by another process answers "locked" at once,
        # without the busy handler: retry until the deadline.
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
