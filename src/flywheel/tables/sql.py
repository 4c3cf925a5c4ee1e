"""DuckDB connections and SQL identifiers, the same for every query this package builds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb


def duckdb_connection(memory_limit: str = "2GB",
                      threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with UTC sessions (so timestamps leave as UTC) and a memory cap
    past which it spills to disk instead of growing."""
    import duckdb

    config: dict[str, Any] = {"memory_limit": memory_limit}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def quote_ident(name: str) -> str:
    """`name` as a quoted SQL identifier: any column or table name, whatever its
    characters, and never read as SQL."""
    return '"' + name.replace('"', '""') + '"'
