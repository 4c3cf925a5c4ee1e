"""RFC 3339 date-times and ISO dates, from text to the log's columns, column-wise.

What the log stores is decided here, before anything commits: a time it cannot hold is a
bad row with the reason, never a failed commit.

- Instants are kept to the microsecond in UTC: further fraction digits are cut (the
  log's resolution, as Snowplow keeps milliseconds); the offset is applied.
- `t`, `z` and a space for `T` are accepted, as RFC 3339 allows.
- Years 0001 to 9999 in UTC, the range of the Parquet readers people use (Python's
  datetime, Spark); `0001-01-01T01:00:00+08:21` is before it.
- A leap second (`:60`) cannot be represented in the log's timestamps and is refused.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

MIN_TIME_US = -62_135_596_800_000_000
"""0001-01-01T00:00:00Z in microseconds since the epoch."""
MAX_TIME_US = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z."""
MIN_DAY, MAX_DAY = -719_162, 2_932_896
"""0001-01-01 and 9999-12-31 in days since the epoch."""
_LEAP_SECOND = re.compile(r"[Tt ]\d\d:\d\d:60")
DATE_TIME_EXAMPLE = "an RFC 3339 date-time with a time zone, e.g. 2026-01-01T12:00:00Z"
DATE_EXAMPLE = "an ISO date, e.g. 2026-01-01"


def parse(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[tuple[int, str]]]:
    """`values` (text) as `target` (TIMESTAMP or date32), and the rows that cannot be:
    (position, why). Those rows are null in the result."""
    is_date = target == pa.date32()
    problems: list[tuple[int, str]] = []
    try:  # canonical text, the usual case, casts as it is
        parsed = values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = values if is_date else _normalised(values)
        try:
            parsed = text.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed, problems = _one_by_one(text, values, target)
    out_of_range = _out_of_range(parsed, is_date)
    if out_of_range:
        shown = values.to_pylist()
        for i in out_of_range:
            problems.append((i, f"{shown[i]!r} is outside the years 0001 to 9999 (UTC) that "
                                "the log stores"))
        dropped = set(out_of_range)
        keep = pa.array([i not in dropped for i in range(len(parsed))])
        parsed = pc.if_else(keep, parsed, pa.scalar(None, target))
    return parsed, problems


def _normalised(values: pa.Array) -> pa.Array:
    upper = pc.utf8_upper(values)
    return pc.replace_substring_regex(upper, r"(\.\d{6})\d+", r"\1")


def _one_by_one(text: pa.Array, original: pa.Array, target: pa.DataType,
                ) -> tuple[pa.Array, list[tuple[int, str]]]:
    expected = DATE_EXAMPLE if target == pa.date32() else DATE_TIME_EXAMPLE
    out: list[object] = []
    problems: list[tuple[int, str]] = []
    for i, (value, shown) in enumerate(zip(text.to_pylist(), original.to_pylist(),
                                           strict=True)):
        try:
            out.append(pa.array([value], pa.string()).cast(target)[0].value)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            if target != pa.date32() and _LEAP_SECOND.search(str(shown)):
                problems.append((i, f"{shown!r} is a leap second, which the log's "
                                    "timestamps cannot hold; send :59.999999 instead"))
            else:
                problems.append((i, f"{shown!r} is not {expected}"))
    storage = pa.int32() if target == pa.date32() else pa.int64()
    return pa.array(out, storage).cast(target), problems


def _out_of_range(parsed: pa.Array, is_date: bool) -> list[int]:
    if is_date:
        numbers, low, high = parsed.cast(pa.int32()), MIN_DAY, MAX_DAY
    else:
        numbers, low, high = parsed.cast(pa.int64()), MIN_TIME_US, MAX_TIME_US
    outside = pc.or_(pc.less(numbers, low), pc.greater(numbers, high))
    if not pc.any(outside).as_py():
        return []
    return [i for i, flag in enumerate(outside.to_pylist()) if flag]
