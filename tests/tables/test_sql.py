"""One way to put a name into SQL: any name comes back as itself, never read as SQL."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.tables.sql import duckdb_connection, quote_ident

# DuckDB names hold any character but NUL; these are the ones that break naive quoting.
NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
                | st.sampled_from(['"', "'", ";", " ", "-", "\n", "."]), min_size=1,
                max_size=20)


@settings(max_examples=60, deadline=None)
@given(name=NAMES)
def test_any_name_is_a_column_of_that_name(name: str) -> None:
    con = duckdb_connection()
    try:
        got = con.sql(f"SELECT 1 AS {quote_ident(name)}")
        assert got.columns == [name]
        assert con.sql(f"SELECT {quote_ident(name)} FROM (SELECT 7 AS {quote_ident(name)})"
                       ).fetchall() == [(7,)]
    finally:
        con.close()


def test_a_name_that_is_sql_stays_a_name() -> None:
    con = duckdb_connection()
    try:
        con.execute("CREATE TABLE t (x INTEGER)")
        name = 'x" FROM t; DROP TABLE t; --'
        assert con.sql(f"SELECT 1 AS {quote_ident(name)}").columns == [name]
        assert con.sql("SELECT count(*) FROM t").fetchall() == [(0,)]  # t is still there
    finally:
        con.close()


def test_connections_speak_utc_and_cap_their_memory() -> None:
    con = duckdb_connection(memory_limit="256MB", threads=1)
    try:
        ((zone,),) = con.sql("SELECT current_setting('TimeZone')").fetchall()
        ((limit,),) = con.sql("SELECT current_setting('memory_limit')").fetchall()
        ((threads,),) = con.sql("SELECT current_setting('threads')").fetchall()
        ((at,),) = con.sql("SELECT TIMESTAMPTZ '2026-01-01 12:00:00+02'").fetchall()
    finally:
        con.close()
    assert zone == "UTC" and threads == 1
    assert limit.startswith(("244", "256"))  # MiB or MB, as DuckDB prints it
    assert at == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
