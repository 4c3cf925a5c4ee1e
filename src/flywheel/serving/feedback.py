"""Feedback: an observed outcome of one prediction, logged as a feedback event; and the
bandits' state, which is what the log says: predictions joined to their latest feedback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.result import IngestResult
from flywheel.log.store import LogStore
from flywheel.schemas.keys import LogTableRef
from flywheel.serving.errors import UnknownPredictionError
from flywheel.serving.events import FEEDBACK_SCHEMA, FEEDBACK_TABLE, PREDICTION_TABLE
from flywheel.tables.sql import duckdb_connection

__all__ = ["bandit_stats", "feedback_event", "logged_prediction", "record_feedback"]


def feedback_event(prediction_id: str, outcome: float,
                   time: str | dt.datetime | None = None) -> dict[str, Any]:
    when = time.isoformat() if isinstance(time, dt.datetime) else time
    event: dict[str, Any] = {"schema": FEEDBACK_SCHEMA,
                             "data": {"prediction_id": prediction_id, "outcome": outcome}}
    if when is not None:
        event["event_time"] = when
    return event


def record_feedback(*, ingestor: Ingestor, known: Callable[[str], bool], prediction_id: str,
                    outcome: float, time: str | dt.datetime | None = None,
                    source: str = "api") -> IngestResult:
    """Log the outcome of a prediction the log knows (committed, or still pending in this
    process); `source` (api, or the transform that derived it) is the event's door.
    Returns once the event is durable; a bad outcome or time is a rejected row."""
    if not isinstance(prediction_id, str) or not known(prediction_id):
        raise UnknownPredictionError(f"no prediction {str(prediction_id)[:100]!r} in the log",
                                     hint="send the prediction_id a predict answer gave")
    return ingestor.ingest([feedback_event(prediction_id, outcome, time)], door=source)


def logged_prediction(log_store: LogStore, prediction_id: str) -> bool:
    """Is this prediction in the log? The id index answers for ids it has seen; a commit
    of another process it has not read back yet is looked up in the table itself."""
    if log_store.index.known([prediction_id]):
        return True
    handle = log_store.handle(PREDICTION_TABLE)
    if not handle.exists():
        return False
    con = duckdb_connection()
    try:
        con.register("predictions", handle.dataset(None))
        found = con.execute("SELECT 1 FROM predictions WHERE event_id = ? LIMIT 1",
                            [prediction_id]).fetchone()
    finally:
        con.close()
    return found is not None


def bandit_stats(log_store: LogStore, deployment: str) -> dict[str, tuple[int, float]]:
    """Per member of `deployment`: how many of its answers have feedback, and their summed
    outcome (the latest feedback of each prediction counts)."""
    predictions = _table(log_store, PREDICTION_TABLE, ["event_id", "deployment", "member",
                                                       "shadow"])
    feedback = _table(log_store, FEEDBACK_TABLE, ["prediction_id", "outcome", "event_time",
                                                  "ingested_at"])
    if predictions is None or feedback is None:
        return {}
    con = duckdb_connection()
    try:
        con.register("predictions", predictions)
        con.register("feedback", feedback)
        rows = con.execute(
            "WITH latest AS (SELECT prediction_id, outcome FROM feedback QUALIFY row_number() "
            "OVER (PARTITION BY prediction_id ORDER BY event_time DESC, ingested_at DESC) = 1)"
            " SELECT p.member, count(*), sum(l.outcome) FROM predictions p JOIN latest l "
            "ON l.prediction_id = p.event_id WHERE p.deployment = ? AND NOT p.shadow "
            "GROUP BY p.member", [deployment]).fetchall()
    finally:
        con.close()
    return {member: (int(count), float(total)) for member, count, total in rows}


def _table(log_store: LogStore, ref: LogTableRef, columns: list[str]) -> pa.Table | None:
    handle = log_store.handle(ref)
    if not handle.exists() or not handle.version():
        return None
    return handle.read(None, columns)
