"""Shared fixtures: real services (PostgreSQL, Redis) and throwaway projects.

A test that needs a service skips with the reason when the service is down, unless
FLYWHEEL_REQUIRE_SERVICES=1 (as in CI), where an unreachable service fails the test.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flywheel._core.settings import Settings


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1.0):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    if _reachable(url):
        return
    message = f"{name} is not reachable at {url} (start it with ../shared/services.sh)"
    if Settings.from_env().require_services:
        pytest.fail(message + "; FLYWHEEL_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = Settings.from_env().postgres_url
    require_service("PostgreSQL", base)
    import sqlalchemy as sa

    schema = f"fw_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def redis_url() -> str:
    url = Settings.from_env().redis_url
    require_service("Redis", url)
    return url


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An initialised, empty project folder."""
    from flywheel.scaffold import init_project

    return init_project(tmp_path / "proj")
