"""Which columns of a CSV or Parquet file fill an event's envelope, and which are its data.

A file of rows has no envelope of its own: its time and id are columns like any other. The
layout names them once per file (`event_time` and `event_id` unless told otherwise), so
that no column named like a time is silently taken for data while the ingestion time
stands in for the real one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flywheel._core.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from flywheel.schemas.registry import VersionSpec

TIME = "event_time"
ID = "event_id"
_TIME_LIKE = re.compile(r"^(ts|time|timestamp|datetime|date_time|created|updated)$"
                        r"|(_time|_at|_ts|_timestamp|_datetime)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """The envelope columns of one file and the properties of the schema it is ingested as."""

    time_column: str | None
    """The column holding each event's time; None: the ingestion time (`--time-now`)."""
    id_column: str | None
    """The column holding each event's id; None: ids derived from the file and the row."""
    declared: frozenset[str] = frozenset()

    def is_data(self, name: str) -> bool:
        """Does the column feed the event's data? An envelope column does only when the
        schema declares a property of its name too."""
        return name not in (self.time_column, self.id_column) or name in self.declared


def looks_like_time(name: str, arrow_type: pa.DataType | None = None) -> bool:
    if arrow_type is not None:
        import pyarrow as pa

        if pa.types.is_timestamp(arrow_type):
            return True
    return _TIME_LIKE.search(name) is not None


def resolve(names: Sequence[str], spec: VersionSpec, *, source: str,
            time_column: str | None, id_column: str | None, time_now: bool,
            types: dict[str, pa.DataType] | None = None) -> tuple[Layout, list[str]]:
    """The layout of a file with columns `names` (and, for Parquet, their `types`), and
    the warnings to print. Raises `InputError` for names that are not columns, an
    ambiguous envelope, or a file with no event time."""
    known = set(names)
    _check_named(time_column, "--time-column", known, TIME)
    _check_named(id_column, "--id-column", known, ID)
    if time_column is not None and time_column == id_column:
        raise InputError(f"--time-column and --id-column both name {time_column}; "
                         "one column cannot hold both")
    if time_now:
        if time_column is not None:
            raise InputError("--time-now and --time-column exclude each other: the event "
                             "time comes from one place")
        if TIME in known:
            raise InputError(f"{source} has an {TIME} column; --time-now would ignore it",
                             hint="drop --time-now to use the column")
    elif time_column is None:
        if TIME not in known:
            raise InputError(_no_time_message(source, names, types))
        time_column = TIME
    if id_column is None and ID in known:
        id_column = ID
    if types is not None:
        _check_types(types, time_column, id_column)
    layout = Layout(time_column=time_column, id_column=id_column, declared=spec.declared)
    return layout, _warnings(names, types, spec, layout)


def _check_named(given: str | None, flag: str, known: set[str], default: str) -> None:
    if given is None:
        return
    if given not in known:
        shown = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
        raise InputError(f"{flag} {given}: the file has no such column (its columns: {shown})")
    if given != default and default in known:
        raise InputError(f"{flag} {given}: the file also has an {default} column; "
                         "rename or drop one of them, so that one column holds it")


def _no_time_message(source: str, names: Sequence[str],
                     types: dict[str, pa.DataType] | None) -> str:
    candidates = [n for n in names if looks_like_time(n, (types or {}).get(n))]
    guess = f" ({candidates[0]} looks like one)" if candidates else ""
    return (f"{source} has no {TIME} column: pass --time-column COL to name the column "
            f"holding each event's time{guess}, or --time-now to use the ingestion time")


def _check_types(types: dict[str, pa.DataType], time_column: str | None,
                 id_column: str | None) -> None:
    import pyarrow as pa

    if time_column is not None:
        found = _value_type(types[time_column])
        if not (pa.types.is_timestamp(found) or _is_text(found) or pa.types.is_null(found)):
            raise InputError(f"time column {time_column} holds {found} values; an event time "
                             "is a timestamp or RFC 3339 text")
    if id_column is not None:
        found = _value_type(types[id_column])
        if not (_is_text(found) or pa.types.is_integer(found) or pa.types.is_null(found)):
            raise InputError(f"id column {id_column} holds {found} values; an event id is "
                             "text or an integer")


def _value_type(arrow_type: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _is_text(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
                or getattr(pa.types, "is_string_view", lambda _: False)(arrow_type))


def _warnings(names: Sequence[str], types: dict[str, Any] | None, spec: VersionSpec,
              layout: Layout) -> list[str]:
    undeclared = [n for n in names if layout.is_data(n) and n not in spec.declared]
    if not undeclared:
        return []
    if not spec.allows_extra:
        return [f"warning: {', '.join(undeclared)} {'is' if len(undeclared) == 1 else 'are'} "
                f"not declared by {spec.uri}, which allows no other properties: every row "
                "with a value there is rejected"]
    return [f"warning: column {name} looks like a time, but {spec.uri} does not declare it: "
            f"it would be kept as text in _extra; pass --time-column {name} if it is the "
            "event time" for name in undeclared if looks_like_time(name, (types or {}).get(name))]
