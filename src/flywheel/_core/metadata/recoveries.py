"""The recovery ledger: which bad rows were recovered, each exactly once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Recoveries(Protocol):
    def claim_recoveries(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Record (bad_row_id, event_id) pairs as recovered; returns the bad_row_ids that
        were not recovered before. Safe under concurrent callers: each id is claimed once."""

    def recovered_ids(self) -> set[str]: ...
