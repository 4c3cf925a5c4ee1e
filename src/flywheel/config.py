"""`flywheel.yaml` -> typed, validated configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from flywheel._core.errors import ConfigError
from flywheel._core.registry import is_known_scheme, schemes, url_scheme
from flywheel._core.settings import Settings
from flywheel._core.text import read_yaml

CONFIG_FILE = "flywheel.yaml"
STATE_DIR = ".flywheel"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    prediction_log: Literal["process", "thread"] = "process"
    """Where a server commits its predictions: in a committer process beside each server
    process (its interpreter then only serves), or in a thread of its own."""


class IngestConfig(_Strict):
    max_event_bytes: int = Field(default=64 * 1024, ge=64)
    """An event larger than this (as received) is a bad row with reason `too_large`."""
    max_future_seconds: int = Field(default=24 * 3600, ge=0, le=10**12)
    """An `event_time` further ahead of the clock than this is rejected."""
    commit_linger_ms: float = Field(default=2.0, ge=0)
    """How long the writer waits for more requests to share a commit."""
    compact_min_files: int = Field(default=32, ge=2)
    """Compact a log table in the background after this many commits: a Delta commit
    costs more with every file its table holds, so small files are merged early."""


class BadRowsAlertConfig(_Strict):
    window_seconds: float = Field(default=300, gt=0)
    threshold: float = Field(default=0.05, ge=0, le=1)
    """Alert when rejected / received over the window exceeds this fraction."""
    min_events: int = Field(default=100, ge=1)
    cooldown_seconds: float = Field(default=300, ge=0)
    webhook: str | None = None
    command: str | None = None


class AlertsConfig(_Strict):
    bad_rows: BadRowsAlertConfig = BadRowsAlertConfig()


STORAGE_SCHEMES = ("file", "s3")


class ProjectConfig(_Strict):
    name: str = "flywheel-project"
    storage: str = "data"
    """Where tables live: a folder (relative to the project), `file://` or `s3://`."""
    metadata: str = f"sqlite:///{STATE_DIR}/metadata.db"
    """SQLAlchemy URL of the metadata store; relative sqlite paths are from the project."""
    online: str = f"sqlite:///{STATE_DIR}/online.db"
    """The online feature store: sqlite:///path or redis://host:port/db."""
    artifacts: str = "artifacts"
    """Content-addressed artifacts (models, step outputs): a folder, relative to the project."""
    server: ServerConfig = ServerConfig()
    ingest: IngestConfig = IngestConfig()
    alerts: AlertsConfig = AlertsConfig()

    @field_validator("storage", "metadata", "online", "artifacts")
    @classmethod
    def _readable(cls, value: str) -> str:
        # A NUL byte or a bad port would otherwise fail deep inside a backend, later.
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("holds a control character (a NUL byte, a newline...)")
        if "://" in value:
            try:
                urlsplit(value).port  # noqa: B018 - parsing it is the check
            except ValueError as exc:
                raise ValueError(f"'{value}' is not a valid URL ({exc})") from None
        return value

    @field_validator("metadata", "online")
    @classmethod
    def _known_backend(cls, value: str, info: ValidationInfo) -> str:
        role = str(info.field_name)
        scheme = url_scheme(value)
        if not is_known_scheme(role, scheme):
            known = ", ".join(f"{s}://" for s in schemes(role))
            raise ValueError(f"no {role} backend for URL scheme '{scheme}://'; use {known}")
        if scheme == "sqlite" and not (value.startswith("sqlite:///") or value == "sqlite://"):
            raise ValueError(f"'{value}' is not a SQLite URL: write sqlite:///relative/path "
                             "or sqlite:////absolute/path")
        return value

    @field_validator("artifacts")
    @classmethod
    def _known_artifacts(cls, value: str) -> str:
        scheme = url_scheme(value)
        if "://" in value and not is_known_scheme("artifacts", scheme):
            known = ", ".join(f"{s}://" for s in schemes("artifacts"))
            raise ValueError(f"no artifacts backend for URL scheme '{scheme}://'; use a "
                             f"folder or {known}")
        return value

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        # Checked here, not at the first ingest: a typo must not wait for data to fail.
        scheme, found, _ = value.partition("://")
        if found and scheme.lower() not in STORAGE_SCHEMES:
            raise ValueError(f"unknown URL scheme '{scheme}://'; use a folder, "
                             + " or ".join(f"{s}://" for s in STORAGE_SCHEMES))
        return value


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def load_config(project_dir: Path, settings: Settings | None = None) -> ProjectConfig:
    """Read and validate `flywheel.yaml`, then apply environment overrides."""
    path = project_dir / CONFIG_FILE
    raw: Any = read_yaml(path, ConfigError) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of settings")
    settings = settings or Settings.from_env()
    if settings.metadata_url:
        raw["metadata"] = settings.metadata_url
    if settings.storage_url:
        raw["storage"] = settings.storage_url
    if settings.online_url:
        raw["online"] = settings.online_url
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc


def resolve_sqlite_url(url: str, project_dir: Path) -> str:
    """Make a relative `sqlite:///path` absolute against the project folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        relative = url[len(prefix):]
        if relative and relative != ":memory:":
            return f"{prefix}{(project_dir / relative).resolve()}"
    return url
