"""The online store interface: the latest feature values per entity, read in one round trip.

Backends (SQLite, Redis) store and fetch bytes-level rows; what a feature view is, TTLs and
type handling live above them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OnlineRow:
    key: str
    """The entity key, encoded by the caller (join key values joined, e.g. 'u1' or 'u1|sku9')."""
    values: Mapping[str, Any]
    """Feature name -> value; values are JSON-like (None, bool, int, float, str, lists)."""
    event_time: dt.datetime
    """Timezone-aware; a row older than the stored one for the same key is ignored."""


@dataclass(frozen=True, slots=True)
class OnlineValue:
    values: dict[str, Any]
    event_time: dt.datetime


class OnlineStore(Protocol):
    url: str

    def put(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Upsert rows of one feature view (latest event_time wins); returns rows written."""

    def get(self, requests: Sequence[tuple[str, Sequence[str]]]
            ) -> list[list[OnlineValue | None]]:
        """For each (view, keys): the stored value per key, None when unknown. All views
        in one round trip to the backend."""

    def drop(self, view: str) -> None:
        """Forget every row of a view."""

    def close(self) -> None: ...
