"""A small table partitioned by day (integers, lists, timestamps), for Delta handle tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

SCHEMA = pa.schema([("n", pa.int64()), ("tags", pa.list_(pa.string())),
                    ("at", pa.timestamp("us", tz="UTC")), ("event_date", pa.date32())])


def rows(start: int, count: int, day: int = 1) -> pa.Table:
    return pa.table({
        "n": pa.array(range(start, start + count), pa.int64()),
        "tags": pa.array([["a", str(i)] for i in range(count)], pa.list_(pa.string())),
        "at": pa.array([dt.datetime(2026, 1, day, tzinfo=dt.UTC)] * count,
                       pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([dt.date(2026, 1, day + i % 2) for i in range(count)],
                               pa.date32()),
    }, schema=SCHEMA)
