"""The metadata store interface: what every metadata backend (SQLite, PostgreSQL) provides.

Backends implement only storage; meaning (versioning rules, token hashing, recovery
semantics) lives above them, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol


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


BEARER = "bearer"
PUBLISHABLE = "publishable"
TOKEN_KINDS = (BEARER, PUBLISHABLE)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A bearer token (a secret, with scopes) or a publishable key (public, shipped in web
    pages and apps: it opens only the tracker doors, for its app ids, origins and rate)."""

    name: str
    sha256: str
    scopes: tuple[str, ...]
    created_at: dt.datetime | None = None
    kind: str = BEARER
    app_ids: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    rate: float | None = None
    """Events per second the key may send (per server process); None: no limit."""
    key: str | None = None
    """The publishable key itself (it is not a secret); None for bearer tokens."""


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


RunStatus = Literal["running", "finished", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One tracked run: a pipeline execution or a block of code under `start_run`."""

    id: str
    name: str
    status: RunStatus
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    parent_id: str | None = None
    environment: str = "{}"
    """JSON: Python version, platform and the versions of the packages that matter."""
    git_commit: str | None = None
    git_dirty: bool | None = None
    """Uncommitted changes in the project's git work tree; None outside git."""


class MetricPoint(NamedTuple):
    """One value of a metric at a step. A NaN value is kept (stored as NULL).

    A named tuple: runs make hundreds of thousands of these, and tuples are cheap."""

    run_id: str
    key: str
    value: float
    step: int
    timestamp: dt.datetime


@dataclass(frozen=True, slots=True)
class RunArtifactRecord:
    run_id: str
    name: str
    sha256: str
    kind: str
    """How it was serialised, so it can be read back (see flywheel.tracking.kinds)."""
    size: int


@dataclass(frozen=True, slots=True)
class RunDetails:
    """What a run recorded besides its own row. `metrics` holds each key's latest value."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricPoint] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, RunArtifactRecord] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    """Table name -> the version the run read."""


Comparison = Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """One condition of a run search: `params.lr = 0.1`, `metrics.auc >= 0.8`, `tags.team = x`.

    Params and tags compare as text (`=` and `!=` only); metrics compare their latest value.
    """

    field: Literal["params", "metrics", "tags"]
    key: str
    op: Comparison
    value: str | float


@dataclass(frozen=True, slots=True)
class RunQuery:
    name: str | None = None
    status: RunStatus | None = None
    parent_id: str | None = None
    top_level: bool = False
    """Only runs without a parent (pipeline runs, not their steps' runs)."""
    filters: tuple[RunFilter, ...] = ()
    order_by: str | None = None
    """A metric key; runs without it come last. None orders by start time."""
    descending: bool = True
    limit: int = 100


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

    # Runs ------------------------------------------------------------------------
    def add_run(self, record: RunRecord, tags: Mapping[str, str] | None = None) -> None:
        """Record a new run, with its first tags in the same transaction; an id recorded
        before raises."""

    def end_run(self, run_id: str, status: RunStatus, ended_at: dt.datetime) -> None: ...

    def get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """The runs of `run_ids` that exist, in the order asked."""

    def find_run_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids starting with `prefix` (to resolve a shortened id)."""

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Record params; one logged before with another value raises (params are fixed)."""

    def log_metrics(self, points: Sequence[MetricPoint]) -> None:
        """Append metric points in one batch and keep each key's latest value current."""

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags; a tag set before is overwritten."""

    def add_run_artifacts(self, records: Sequence[RunArtifactRecord]) -> None:
        """Record artifacts; one name per run (a name recorded before raises)."""

    def add_run_inputs(self, run_id: str, table_versions: Mapping[str, int]) -> None:
        """Record the table versions read; a table read twice at two versions raises."""

    def run_details(self, run_ids: Sequence[str]) -> dict[str, RunDetails]:
        """Params, latest metrics, tags, artifacts and inputs of many runs at once."""

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of one metric, by step then time."""

    def search_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching every condition, in one query whatever their number."""

    # Model registry ----------------------------------------------------------------
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
