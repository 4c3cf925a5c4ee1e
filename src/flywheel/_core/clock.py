"""One place to ask for the time, so that tests and replays can reason about it."""

from __future__ import annotations

import datetime as dt

UTC = dt.UTC


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


def utc_now_us() -> int:
    """Microseconds since the epoch, the unit every timestamp column uses."""
    now = utc_now()
    return int(now.timestamp()) * 1_000_000 + now.microsecond
