"""What a monitor reads, registered on a DuckDB connection: its rows, their event time, and
the versions read (for lineage). Only the log and derived tables are read, never the clock.

- `table`: a derived table at its newest version, its event time `timestamp:` (default
  `event_time`).
- `feature_view`: the view's source table, its event time the view's timestamp column.
- `deployment`: the prediction log, one row per prediction of the deployment, with each
  prediction's latest feedback joined the way `predictions_with_feedback` joins it (its SQL
  is the shipped transform's, run here on the log tables themselves, so a monitor needs no
  `flywheel transform` first). Feedback counts only if it arrived (by event time) before
  the window's end plus the monitor's label delay.

The horizon is the newest event time among the inputs: a window is complete once it ends
at or before it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from flywheel.features.store import FeatureStore
from flywheel.log.store import LogStore
from flywheel.monitoring.errors import MonitorSpecError
from flywheel.monitoring.spec import MonitorSpec
from flywheel.monitoring.windows import micros, to_utc, window_start_sql
from flywheel.serving.events import FEEDBACK_TABLE, PREDICTION_TABLE
from flywheel.serving.feedback_table import PREDICTIONS_WITH_FEEDBACK
from flywheel.tables.sql import quote_ident
from flywheel.transforms.store import DerivedTables

__all__ = ["DEFAULT_TIMESTAMP", "PREDICTIONS", "InputSources", "MonitorInput", "open_input"]

DEFAULT_TIMESTAMP = "event_time"
PREDICTIONS = "__predictions"
"""The relation of a deployment's predictions (columns of `predictions_with_feedback`)."""
_TARGET = "__target"
_SHIPPED_SQL = Path(__file__).parents[1] / "serving" / "transforms" / \
    f"{PREDICTIONS_WITH_FEEDBACK}.sql"


class InputSources(Protocol):
    """What monitors read of a project."""

    @property
    def tables(self) -> DerivedTables: ...

    @property
    def log_store(self) -> LogStore: ...

    @property
    def features(self) -> FeatureStore: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorInput:
    relation: str
    """A relation registered on the connection, holding every row of the target."""
    timestamp: str
    columns: tuple[str, ...]
    """The columns a quality or drift monitor may look at."""
    versions: dict[str, int] = field(default_factory=dict)
    """What was read, `table:NAME` or `log:vendor/name`, at which version."""
    horizon: dt.datetime | None = None
    first: dt.datetime | None = None
    """The oldest event time (None: no rows yet)."""


def open_input(connection: Any, spec: MonitorSpec, sources: InputSources) -> MonitorInput:
    """Register the monitor's rows on `connection` and say how to read them."""
    kind = spec.target.kind
    if kind == "deployment":
        return _deployment(connection, spec, sources.log_store)
    if kind == "feature_view":
        view = sources.features.registry.views.get(spec.target.name)
        if view is None:
            raise MonitorSpecError(f"monitor {spec.name}: no feature view "
                                   f"{spec.target.name!r}", hint="see `flywheel features list`")
        table, timestamp = view.source, spec.timestamp or view.timestamp_column
        columns = [f.name for f in view.specs]
    else:
        table, timestamp, columns = spec.target.name, spec.timestamp or DEFAULT_TIMESTAMP, []
    handle = sources.tables.handle(table)
    version = handle.version() if handle.exists() else None
    if version is None:
        raise MonitorSpecError(f"monitor {spec.name}: table {table} has not been built yet",
                               hint="run `flywheel transform` first")
    connection.register(_TARGET, handle.dataset(version))
    names = [c[0] for c in connection.execute(f"DESCRIBE {_TARGET}").fetchall()]
    if timestamp not in names:
        raise MonitorSpecError(f"monitor {spec.name}: table {table} has no column "
                               f"{timestamp!r} for event time",
                               hint="name its event-time column with `timestamp:`")
    first, horizon = _span(connection, _TARGET, timestamp)
    return MonitorInput(relation=_TARGET, timestamp=timestamp,
                        columns=tuple(columns or [n for n in names if n != timestamp]),
                        versions={f"table:{table}": version}, horizon=horizon, first=first)


def _deployment(connection: Any, spec: MonitorSpec, log: LogStore) -> MonitorInput:
    versions = {}
    for alias, ref in (("predictions", PREDICTION_TABLE), ("feedback", FEEDBACK_TABLE)):
        handle = log.handle(ref)
        version = handle.version() if handle.exists() else None
        if version is None:
            raise MonitorSpecError(f"monitor {spec.name}: the log has no {ref.name} table",
                                   hint="run `flywheel apply` first")
        connection.register(f"__{alias}_log", handle.dataset(version))
        versions[f"log:{ref}"] = version
    delay = micros(spec.label_delay)
    # Feedback counts for a prediction if it came before the end of the prediction's
    # window plus the label delay: a window's figures never change once it is complete.
    size = micros(spec.window)
    connection.execute(
        "CREATE OR REPLACE TEMP VIEW __feedback AS SELECT f.* FROM __feedback_log f JOIN "
        "__predictions_log p ON p.event_id = f.prediction_id WHERE epoch_us(f.event_time) < "
        f"{window_start_sql('epoch_us(p.event_time)', size)} + {size} + {delay}")
    sql = _shipped_sql().replace("from predictions p", "from __predictions_log p").replace(
        "from feedback", "from __feedback")
    deployment = spec.target.name.replace("'", "''")
    connection.execute(f"CREATE OR REPLACE TEMP VIEW {PREDICTIONS} AS SELECT * FROM ({sql}) "
                       f"WHERE deployment = '{deployment}'")
    first, _ = _span(connection, PREDICTIONS, "predicted_at")
    # The log's clock: the newest prediction or feedback of any deployment, so a quiet
    # deployment's windows complete as the rest of the log moves on.
    newest = [_span(connection, f"__{alias}_log", "event_time")[1]
              for alias in ("predictions", "feedback")]
    horizon = max((t for t in newest if t is not None), default=None)
    return MonitorInput(relation=PREDICTIONS, timestamp="predicted_at", columns=(),
                        versions=versions, horizon=horizon, first=first)


def _shipped_sql() -> str:
    lines = [line for line in _SHIPPED_SQL.read_text(encoding="utf-8").splitlines()
             if not line.lstrip().startswith("--")]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def _span(connection: Any, relation: str, timestamp: str,
          ) -> tuple[dt.datetime | None, dt.datetime | None]:
    column = quote_ident(timestamp)
    low, high = connection.execute(
        f"SELECT min({column}), max({column}) FROM {relation}").fetchone()
    return _utc(low), _utc(high)


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise MonitorSpecError(f"event time values must be timestamps, found {value!r}")
    return to_utc(value)
