"""Event-time windows: aligned on the epoch, complete only, the same whenever cut."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from flywheel.monitoring.windows import complete_windows, floor_time

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                     timezones=st.just(dt.UTC))
sizes = st.integers(1, 14 * 86_400).map(lambda s: dt.timedelta(seconds=s))


@given(times, sizes)
def test_a_time_falls_in_the_window_its_floor_starts(when: dt.datetime,
                                                     size: dt.timedelta) -> None:
    start = floor_time(when, size)
    assert start <= when < start + size
    assert floor_time(start, size) == start


@given(times, st.integers(0, 500).map(lambda m: dt.timedelta(minutes=m)), sizes)
def test_windows_tile_without_gaps_and_end_by_the_horizon(
        first: dt.datetime, span: dt.timedelta, size: dt.timedelta) -> None:
    windows = list(complete_windows(first, first + span, size))
    assert all(w.end - w.start == size for w in windows)
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    if windows:
        assert windows[0].start <= first < windows[0].end
        assert windows[-1].end <= first + span < windows[-1].end + size


def test_after_skips_the_windows_already_kept() -> None:
    hour = dt.timedelta(hours=1)
    every = list(complete_windows(T0, T0 + 5 * hour, hour))
    rest = list(complete_windows(T0, T0 + 5 * hour, hour, after=every[2].start))
    assert rest == every[2:]
    assert len(every) == 5


def test_the_open_window_is_not_complete() -> None:
    hour = dt.timedelta(hours=1)
    assert list(complete_windows(T0, T0 + dt.timedelta(minutes=59), hour)) == []
