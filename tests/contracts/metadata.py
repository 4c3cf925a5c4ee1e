"""What the metadata capability contracts share: a migrated database, on SQLite or PostgreSQL.

Each capability's contract builds its SQL implementation alone over the database, so each
capability is shown to stand without the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.sql import SqlMetadataStore


class MetadataContract:
    """Subclasses provide `url` (mixing in `OnSqlite` or `OnPostgres`)."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def db(self, url: str) -> Iterator[Database]:
        store = SqlMetadataStore(url)
        try:
            store.migrate()
        finally:
            store.close()
        db = Database(url)
        yield db
        db.dispose()


class OnSqlite:
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/nested/metadata.db"


class OnPostgres:
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
