"""The derived tables Flywheel ships: `predictions_with_feedback`, every prediction joined
to its latest feedback event, built from the two log tables by a transform like any other
(so `flywheel replay` rebuilds it, and `flywheel lineage` traces it to log offsets).

It joins a project's transforms once the project has logged a prediction (`flywheel apply`
creates both log tables, empty, in every project; a project that serves nothing builds
nothing more). A project transform of the same name takes its place: the project's own
definition wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from flywheel.log.store import LogStore
from flywheel.schemas.keys import LogTableRef
from flywheel.serving.events import FEEDBACK_TABLE, PREDICTION_TABLE
from flywheel.transforms.dag import load_transforms
from flywheel.transforms.definitions import TransformDef, parse_sql

__all__ = ["PREDICTIONS_WITH_FEEDBACK", "has_predictions", "project_transforms",
           "shipped_transforms"]

PREDICTIONS_WITH_FEEDBACK = "predictions_with_feedback"
_FOLDER = Path(__file__).with_name("transforms")


def has_predictions(log_store: LogStore) -> bool:
    """Has a prediction been committed? (Version 0 is the empty table `apply` creates.)"""
    handle = log_store.handle(PREDICTION_TABLE)
    return handle.exists() and bool(handle.version())


def shipped_transforms(log_tables: Iterable[LogTableRef], *, predictions: bool
                       ) -> list[TransformDef]:
    """The shipped transforms of a project with these log tables, and `predictions` in
    the log or not."""
    if not predictions or not {PREDICTION_TABLE, FEEDBACK_TABLE} <= set(log_tables):
        return []
    return [parse_sql(_FOLDER / f"{PREDICTIONS_WITH_FEEDBACK}.sql")]


def project_transforms(folder: Path, log_tables: Iterable[LogTableRef],
                       log_store: LogStore) -> list[TransformDef]:
    """The project's transforms under `folder`, and the shipped ones it does not redefine."""
    own = load_transforms(folder)
    names = {t.name for t in own}
    shipped = shipped_transforms(log_tables, predictions=has_predictions(log_store))
    return own + [t for t in shipped if t.name not in names]
