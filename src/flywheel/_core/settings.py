"""Every `FLYWHEEL_*` environment variable, declared once with its type and default."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Environment overrides. Read fresh with `Settings.from_env()`; never cached at import."""

    project_dir: str | None
    """FLYWHEEL_PROJECT: the project folder when no --project is given (default: cwd)."""
    metadata_url: str | None
    """FLYWHEEL_METADATA_URL: overrides `metadata` in flywheel.yaml."""
    storage_url: str | None
    """FLYWHEEL_STORAGE_URL: overrides `storage` in flywheel.yaml."""
    online_url: str | None
    """FLYWHEEL_ONLINE_URL: overrides `online` in flywheel.yaml."""
    token: str | None
    """FLYWHEEL_TOKEN: the bearer token clients send to a server bound beyond loopback."""
    require_services: bool
    """FLYWHEEL_REQUIRE_SERVICES: tests fail, instead of skipping, when a service is down."""
    postgres_url: str
    """FLYWHEEL_TEST_POSTGRES_URL: the PostgreSQL the tests use."""
    redis_url: str
    """FLYWHEEL_TEST_REDIS_URL: the Redis the tests use."""
    no_progress: bool
    """FLYWHEEL_NO_PROGRESS: hide progress bars (also hidden when output is not a terminal)."""
    debug: bool
    """FLYWHEEL_DEBUG: show the traceback of an unexpected error instead of one line."""

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            project_dir=env("FLYWHEEL_PROJECT") or None,
            metadata_url=env("FLYWHEEL_METADATA_URL") or None,
            storage_url=env("FLYWHEEL_STORAGE_URL") or None,
            online_url=env("FLYWHEEL_ONLINE_URL") or None,
            token=env("FLYWHEEL_TOKEN") or None,
            require_services=_flag("FLYWHEEL_REQUIRE_SERVICES"),
            postgres_url=env("FLYWHEEL_TEST_POSTGRES_URL")
            or "postgresql+psycopg://postgres@127.0.0.1:5432/test",
            redis_url=env("FLYWHEEL_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0",
            no_progress=_flag("FLYWHEEL_NO_PROGRESS"),
            debug=_flag("FLYWHEEL_DEBUG"),
        )
