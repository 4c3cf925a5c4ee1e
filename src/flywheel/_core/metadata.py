"""The metadata store interface: what every metadata backend (SQLite, PostgreSQL) provides.

Backends implement only storage; meaning (versioning rules, token hashing, recovery
semantics) lives above them, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    """A registered event schema version. Immutable once registered."""

    vendor: str
    name: str
    format: str
    major: int
    minor: int
    patch: int
    body: str
    """The JSON Schema document, canonical JSON."""
    sha256: str
    registered_at: dt.datetime | None = None

    @property
    def key(self) -> str:
        version = f"{self.major}-{self.minor}-{self.patch}"
        return f"iglu:{self.vendor}/{self.name}/{self.format}/{version}"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    sha256: str
    scopes: tuple[str, ...]
    created_at: dt.datetime | None = None


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


class MetadataStore(Protocol):
    """Storage of project metadata. Methods are batch-first where batches make sense."""

    url: str

    def migrate(self) -> None:
        """Create or upgrade the tables (explicit; never done by the constructor)."""

    def close(self) -> None: ...

    # Schemas -----------------------------------------------------------------
    def add_schemas(self, records: Iterable[SchemaRecord]) -> int:
        """Register new schema versions; returns how many were new.

        A version registered before with the same sha256 is skipped; one with another
        sha256 raises `SchemaDefinitionError` (schemas are immutable).
        """

    def list_schemas(self) -> list[SchemaRecord]: ...

    # Tokens ------------------------------------------------------------------
    def add_token(self, record: TokenRecord) -> None: ...

    def find_token(self, sha256: str) -> TokenRecord | None: ...

    def list_tokens(self) -> list[TokenRecord]: ...

    def delete_token(self, name: str) -> bool: ...

    # Bad-row recovery ----------------------------------------------------------
    def claim_recoveries(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Record (bad_row_id, event_id) pairs as recovered; returns the bad_row_ids that
        were not recovered before. Safe under concurrent callers: each id is claimed once."""

    def recovered_ids(self) -> set[str]: ...

    # Derived-table versions (lineage, incremental cursors) ------------------------
    def add_table_version(self, record: TableVersionRecord) -> None:
        """Record a published version; a (table, version) already recorded raises."""

    def table_versions(self, table: str) -> list[TableVersionRecord]:
        """Every recorded version of `table`, oldest first."""

    # Cursors: how far a consumer (a materialisation, say) has read -----------------
    def get_cursor(self, name: str) -> str | None: ...

    def set_cursor(self, name: str, value: str) -> None: ...
