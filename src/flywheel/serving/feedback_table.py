"""The derived tables Flywheel ships: `predictions_with_feedback`, every prediction joined
to its latest feedback event, built from the two log tables by a transform like any other
(so `flywheel replay` rebuilds it, and `flywheel lineage` traces it to log offsets).

It joins a project's transforms once the project has both log tables (`flywheel apply`
registers their schemas in every project). A project transform of the same name takes its
place: the project's own definition wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from flywheel.schemas.keys import LogTableRef
from flywheel.serving.events import FEEDBACK_TABLE, PREDICTION_TABLE
from flywheel.transforms.dag import load_transforms
from flywheel.transforms.definitions import TransformDef, parse_sql

__all__ = ["PREDICTIONS_WITH_FEEDBACK", "project_transforms", "shipped_transforms"]

PREDICTIONS_WITH_FEEDBACK = "predictions_with_feedback"
_FOLDER = Path(__file__).with_name("transforms")


def shipped_transforms(log_tables: Iterable[LogTableRef]) -> list[TransformDef]:
    """The shipped transforms whose log tables the project has."""
    known = set(log_tables)
    if not {PREDICTION_TABLE, FEEDBACK_TABLE} <= known:
        return []
    return [parse_sql(_FOLDER / f"{PREDICTIONS_WITH_FEEDBACK}.sql")]


def project_transforms(folder: Path, log_tables: Iterable[LogTableRef]) -> list[TransformDef]:
    """The project's transforms under `folder`, and the shipped ones it does not redefine."""
    own = load_transforms(folder)
    names = {t.name for t in own}
    return own + [t for t in shipped_transforms(log_tables) if t.name not in names]
