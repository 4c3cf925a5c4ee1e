"""A metadata backend: every capability, over one database, opened from the `metadata` URL."""

from __future__ import annotations

from typing import Protocol

from flywheel._core.metadata.alerts import AlertStore
from flywheel._core.metadata.models import ModelStore
from flywheel._core.metadata.recoveries import Recoveries
from flywheel._core.metadata.runs import RunStorage
from flywheel._core.metadata.schemas import SchemaCatalog
from flywheel._core.metadata.table_versions import TableVersions
from flywheel._core.metadata.tokens import TokenStore


class MetadataStore(SchemaCatalog, TokenStore, Recoveries, TableVersions, RunStorage, ModelStore,
                    AlertStore, Protocol):
    """What `Project.metadata` is. Consumers are handed it typed as the one capability they
    use, so each depends on that capability only."""

    url: str

    def migrate(self, *, deferred: bool = False) -> None:
        """Create or upgrade the tables (explicit; never done by the constructor); with
        `deferred`, before the store's first use instead of now, so that opening it costs
        nothing until it is used."""

    def close(self) -> None: ...
