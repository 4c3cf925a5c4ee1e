"""Table versions: the published versions of derived tables (lineage, incremental builds),
and cursors, how far a consumer (a materialisation, say) has read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TableVersionRecord:
    """One published version of a derived table, with what it was built from."""

    table: str
    version: int
    mode: str
    """full or incremental."""
    code_hash: str
    inputs: str
    """JSON: {input name: {"kind": "log" | "table", "after": offset, "upto": offset}}."""
    rows_in: int
    rows_out: int
    content_hash: str | None = None
    created_at: dt.datetime | None = None


class TableVersions(Protocol):
    def add_table_version(self, record: TableVersionRecord) -> None:
        """Record a published version; a (table, version) already recorded raises."""

    def table_versions(self, table: str) -> list[TableVersionRecord]:
        """Every recorded version of `table`, oldest first."""

    def get_cursor(self, name: str) -> str | None: ...

    def set_cursor(self, name: str, value: str) -> None: ...
