"""The model store: model versions, their aliases and the aliases' audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    name: str
    version: int
    run_id: str | None
    artifact_sha256: str
    flavor: str
    """sklearn, lightgbm, xgboost or python (any object with `predict`)."""
    signature: str = "{}"
    """JSON: feature service, input columns, output schema."""
    metrics: str = "{}"
    lineage: str = "{}"
    """JSON: run -> training set table versions -> log offsets."""
    created_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One move of an alias: set (from None), moved, or removed (to None)."""

    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str | None
    at: dt.datetime
    actor: str | None


class ModelStore(Protocol):
    def add_model_version(self, record: ModelVersionRecord) -> ModelVersionRecord:
        """Register the next version of `record.name` (its `version` is ignored and
        allocated here, safely under concurrent callers); returns the stored record."""

    def model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        """Versions of one model (or of all), by name then version."""

    def get_model_version(self, name: str, version: int) -> ModelVersionRecord | None: ...

    def set_alias(self, name: str, alias: str, version: int | None, *, reason: str | None,
                  actor: str | None) -> AliasChange:
        """Point `alias` at `version` (None removes it) and append the change to the audit
        trail in the same transaction; concurrent changes of one model are serialised."""

    def aliases(self, name: str | None = None) -> dict[tuple[str, str], int]:
        """(model name, alias) -> version."""

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every alias change of a model, oldest first."""
