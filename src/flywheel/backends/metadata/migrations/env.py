"""Alembic environment: migrates on the connection that `SqlMetadataStore.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from flywheel.backends.metadata.tables import metadata


def _run() -> None:
    connection = context.config.attributes.get("connection")
    # The store owns the engine (URL normalisation, SQLite pragmas, search_path), so there
    # is no ini-driven or offline mode: a migration always runs through the store.
    if not isinstance(connection, Connection):
        raise RuntimeError("run metadata migrations through SqlMetadataStore.migrate()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
