"""The event schemas Flywheel ships (predictions and feedback) and the events serving writes.

The prediction's `event_id` is its `prediction_id`, so that feedback is checked against the
log's id index. Feedback says where it came from in the envelope's `source` (the door it
was written through: `api`, or the transform that derived it), not in its payload, since
`source` is an envelope column.
"""

from __future__ import annotations

from pathlib import Path

from flywheel.schemas.documents import SchemaDocument, load_folder
from flywheel.schemas.keys import LogTableRef

__all__ = [
    "FEEDBACK_SCHEMA",
    "FEEDBACK_TABLE",
    "PREDICTION_DOOR",
    "PREDICTION_SCHEMA",
    "PREDICTION_TABLE",
    "shipped_schemas",
]

PREDICTION_SCHEMA = "iglu:dev.flywheel/prediction/jsonschema/1-0-0"
FEEDBACK_SCHEMA = "iglu:dev.flywheel/feedback/jsonschema/1-0-0"
PREDICTION_TABLE = LogTableRef("dev.flywheel", "prediction", 1)
FEEDBACK_TABLE = LogTableRef("dev.flywheel", "feedback", 1)
PREDICTION_DOOR = "predict"
_FOLDER = Path(__file__).with_name("schemas")


def shipped_schemas() -> list[SchemaDocument]:
    """The schemas every project registers at `flywheel apply`, beside its own."""
    return load_folder(_FOLDER)
