"""Tumbling event-time windows, aligned on the Unix epoch, and the evaluation horizon.

A window of size `w` is [k·w, (k+1)·w) since 1970-01-01T00:00Z: two evaluations (or a
replay) cut the same windows whatever the time they run at. Only complete windows are
evaluated and kept: those ending at or before the horizon, the newest event time of the
monitor's inputs in the log (never the wall clock). The open window is left for the next
evaluation, so a row once kept is final.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["EPOCH", "Window", "complete_windows", "floor_time", "micros",
           "micros_since_epoch", "to_utc", "window_start_sql"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def to_utc(value: dt.datetime) -> dt.datetime:
    """Naive times (as DuckDB returns them from a UTC session) are UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def floor_time(value: dt.datetime, size: dt.timedelta) -> dt.datetime:
    """The start of the window of `size` that holds `value`."""
    step = micros(size)
    return EPOCH + dt.timedelta(microseconds=(micros(to_utc(value) - EPOCH) // step) * step)


def complete_windows(first: dt.datetime, horizon: dt.datetime, size: dt.timedelta,
                     *, after: dt.datetime | None = None) -> Iterator[Window]:
    """The complete windows from the one holding `first` to the last ending at or before
    `horizon`; `after`: only those starting at or after it (the windows not kept yet)."""
    start = floor_time(first, size)
    if after is not None and to_utc(after) > start:
        start = floor_time(after, size)
    horizon = to_utc(horizon)
    while start + size <= horizon:
        yield Window(start, start + size)
        start += size


def micros_since_epoch(value: dt.datetime) -> int:
    """Exact, before 1970 too (`timestamp()` is a float, and `int()` of it truncates)."""
    return micros(to_utc(value) - EPOCH)


def window_start_sql(micros: str, size: int) -> str:
    """SQL for the start (in microseconds since the epoch) of the window of `size`
    microseconds holding `micros`: a floor, where DuckDB's `//` truncates toward zero
    and would put the hour before 1970 in the hour after it."""
    return f"(({micros}) - ((({micros}) % {size}) + {size}) % {size})"


def micros(delta: dt.timedelta) -> int:
    """A duration in whole microseconds, exactly (no float on the way)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
