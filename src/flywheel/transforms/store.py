"""Derived tables: Delta tables under `{storage}/tables/{name}`, every write a version."""

from __future__ import annotations

import threading

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel._core.hashing import sha256_text
from flywheel.tables.delta import DeltaHandle
from flywheel.tables.sql import duckdb_connection


class DerivedTables:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._handles: dict[str, DeltaHandle] = {}
        self._lock = threading.Lock()

    def handle(self, name: str) -> DeltaHandle:
        with self._lock:
            if name not in self._handles:
                self._handles[name] = DeltaHandle(f"{self.root}/tables/{name}", None,
                                                  append_only=False)
            return self._handles[name]

    def version(self, name: str) -> int | None:
        return self.handle(name).version()

    def read(self, name: str, version: int | None = None) -> pa.Table:
        self._check_version(name, version)
        return self.handle(name).read(version)

    def _check_version(self, name: str, version: int | None) -> None:
        head = self.handle(name).version()
        if head is None:
            raise InputError(f"table '{name}' has not been built yet",
                             hint="run `flywheel transform`")
        if version is not None and not 0 <= version <= head:
            raise InputError(f"table '{name}' has versions 0..{head}; {version} is not one")

    def content_hash(self, name: str, version: int | None = None) -> str:
        """A hash of the rows as a multiset: equal content, equal hash, whatever the row
        order or file layout. Streams, so it works on tables larger than memory."""
        self._check_version(name, version)
        dataset = self.handle(name).dataset(version)
        con = duckdb_connection()
        try:
            con.register("t", dataset)
            count, total = con.execute(
                "SELECT count(*), coalesce(sum(('0x' || substr(sha256(CAST(t AS VARCHAR)), 1, "
                "15))::BIGINT::HUGEINT), 0) FROM t").fetchall()[0]
        finally:
            con.close()
        return sha256_text(f"{dataset.schema}|{count}|{total}")
