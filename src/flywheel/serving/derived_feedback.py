"""Feedback derived by a transform: a table of outcomes (say, a purchase within 30 minutes
of a prediction) turned into feedback events, to be logged like the API's.

Each event's id is derived from what it says (source, prediction, outcome, time), so
logging the same table again stores nothing twice, while an outcome that changed (a late
purchase turns a 0 into a 1) is a new event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from flywheel._core.errors import InputError
from flywheel._core.ids import derived_id
from flywheel.serving.feedback import feedback_event

__all__ = ["FEEDBACK_COLUMNS", "feedback_events"]

FEEDBACK_COLUMNS = ("prediction_id", "outcome", "event_time")
"""What a table of derived feedback holds (other columns are left out)."""


def feedback_events(rows: pa.Table, *, source: str) -> list[dict[str, Any]]:
    """One feedback event per row of `rows` (prediction_id, outcome, event_time); log them
    with `project.ingest(events, door=source)`, so the events name their source."""
    missing = [c for c in FEEDBACK_COLUMNS if c not in rows.column_names]
    if missing:
        raise InputError(f"a feedback table needs column(s) {', '.join(missing)}",
                         hint="one row per outcome: prediction_id, outcome, event_time")
    events = []
    for row in rows.select(list(FEEDBACK_COLUMNS)).to_pylist():
        when = _utc(row["event_time"])
        event = feedback_event(str(row["prediction_id"]), float(row["outcome"]), when)
        event["event_id"] = derived_id("feedback", source, str(row["prediction_id"]),
                                       repr(float(row["outcome"])), when.isoformat())
        events.append(event)
    return events


def _utc(value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise InputError(f"feedback event_time {value!r} is not a time")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
