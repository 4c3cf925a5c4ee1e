"""The schema catalog: registered event schema versions, stored and fetched."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

SchemaKey = tuple[str, str, str, int, int, int]
"""(vendor, name, format, major, minor, patch): one schema version."""


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

    @property
    def version_key(self) -> SchemaKey:
        return (self.vendor, self.name, self.format, self.major, self.minor, self.patch)


class SchemaCatalog(Protocol):
    """Storage of schema versions. Whether a version may be stored is decided above
    (`flywheel.schemas.catalog`): versions are immutable."""

    def insert_schemas(self, records: Sequence[SchemaRecord]) -> set[SchemaKey]:
        """Store the versions not stored yet, in one transaction; a version stored before
        is left as it is. Returns the keys this call stored."""

    def get_schemas(self, keys: Iterable[SchemaKey]) -> dict[SchemaKey, SchemaRecord]:
        """The stored versions among `keys`."""

    def list_schemas(self) -> list[SchemaRecord]:
        """Every stored version, in key order."""
