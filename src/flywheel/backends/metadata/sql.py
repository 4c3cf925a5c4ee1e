"""The metadata store on SQLAlchemy: SQLite (embedded default) and PostgreSQL (psycopg 3).

Each capability is its own class over one shared `Database`; this one combines them, as the
`metadata` URL opens one database for all, and adds the lifecycle: migrations and closing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from flywheel.backends.metadata.alerts import SqlAlertStore
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.models import SqlModelStore
from flywheel.backends.metadata.recoveries import SqlRecoveries
from flywheel.backends.metadata.runs import SqlRunStorage
from flywheel.backends.metadata.schemas import SqlSchemaCatalog
from flywheel.backends.metadata.table_versions import SqlTableVersions
from flywheel.backends.metadata.tokens import SqlTokenStore

_MIGRATIONS = Path(__file__).with_name("migrations")
_ALEMBIC_LOCK = threading.Lock()
# Advisory-lock key ("flyw") serialising migrations across processes; it is database-wide,
# so migrations of different schemas wait for each other too, which is harmless.
_PG_MIGRATION_LOCK = 0x666C7977


class SqlMetadataStore(SqlSchemaCatalog, SqlTokenStore, SqlRecoveries, SqlTableVersions,
                       SqlRunStorage, SqlModelStore, SqlAlertStore):
    """Every metadata capability in SQL tables of one database, migrated with Alembic."""

    def __init__(self, url: str) -> None:
        super().__init__(Database(url))  # connects on first use, not here
        self.url = url

    def migrate(self, *, deferred: bool = False) -> None:
        """Create or upgrade the tables to the newest revision (safe to repeat); `deferred`:
        before the first use of the store instead of now."""
        if deferred:
            self._db.before_first_use(self._upgrade)
        else:
            self._upgrade()

    def _upgrade(self) -> None:
        self._db.make_parent_folder()
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.set_main_option("path_separator", "os")
        # Alembic's `context` and `op` are process-global proxies, so one migration at a
        # time per process; taken before the database lock, so the two cannot deadlock.
        with _ALEMBIC_LOCK, self._db.transaction(write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
            # Alembic runs inside this transaction, on this connection (same search_path).
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        self._db.dispose()
