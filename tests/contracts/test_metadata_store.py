"""The `MetadataStore` contract as a whole, on every backend: migrations, connecting, errors.

Each capability has its own contract (`test_metadata_schemas`, `_tokens`, `_recoveries`,
`_table_versions`, `_runs`, `_models`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from flywheel._core.errors import BackendError
from flywheel._core.metadata.store import MetadataStore
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import normalise_url
from flywheel.backends.metadata.sql import SqlMetadataStore
from tests.contracts.test_metadata_schemas import schema


class MetadataStoreContract:
    """Every metadata backend passes these; subclasses provide `url` and `unreachable_url`."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def unreachable_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[MetadataStore]:
        store = SqlMetadataStore(url)
        store.migrate()
        yield store
        store.close()

    def test_migrate_twice_is_a_no_op(self, store: MetadataStore) -> None:
        store.insert_schemas([schema("click")])
        store.migrate()
        assert [record.name for record in store.list_schemas()] == ["click"]

    def test_concurrent_migrations_of_a_fresh_database(self, url: str) -> None:
        workers = 4
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def migrate() -> None:
            own = SqlMetadataStore(url)
            try:
                barrier.wait()
                own.migrate()
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.close()

        threads = [threading.Thread(target=migrate) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        store = SqlMetadataStore(url)
        try:
            assert len(store.insert_schemas([schema("click")])) == 1
        finally:
            store.close()

    def test_migrations_match_the_tables(self, store: MetadataStore, url: str) -> None:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                diffs = compare_metadata(context, tables.metadata)
        finally:
            engine.dispose()
        # alembic_version is Alembic's own table, not part of the model.
        assert [d for d in diffs if "alembic_version" not in repr(d)] == []

    def test_constructor_has_no_side_effects(self, unreachable_url: str) -> None:
        store = SqlMetadataStore(unreachable_url)  # would fail on any connection attempt
        store.close()

    def test_unreachable_database_raises_backend_error(self, unreachable_url: str) -> None:
        store = SqlMetadataStore(unreachable_url)
        try:
            with pytest.raises(BackendError) as raised:
                store.list_schemas()
            with pytest.raises(BackendError):
                store.migrate()
        finally:
            store.close()
        line = raised.value.one_line()
        assert "\n" not in line
        assert "secret" not in line
        assert sa.make_url(unreachable_url).render_as_string(hide_password=True) in line

    def test_unmigrated_store_says_so(self, url: str) -> None:
        store = SqlMetadataStore(url)
        try:
            with pytest.raises(BackendError, match="not migrated"):
                store.list_tokens()
        finally:
            store.close()


    def test_deferred_migration_runs_before_the_first_use_only(self, url: str) -> None:
        store = SqlMetadataStore(url)
        store.migrate(deferred=True)  # nothing is touched yet
        probe = SqlMetadataStore(url)
        try:
            with pytest.raises(BackendError, match="not migrated"):
                probe.list_tokens()
        finally:
            probe.close()
        workers = 4
        barrier = threading.Barrier(workers)
        seen: list[object] = []

        def first_use() -> None:
            barrier.wait()  # every thread's first use at once: one migrates, others wait
            try:
                seen.append(len(store.insert_schemas([schema(f"s{threading.get_ident()}")])))
            except BaseException as exc:
                seen.append(exc)

        threads = [threading.Thread(target=first_use) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            assert seen == [1] * workers
            assert len(store.list_schemas()) == workers
        finally:
            store.close()

    def test_deferred_migration_that_fails_is_tried_again(self, unreachable_url: str) -> None:
        store = SqlMetadataStore(unreachable_url)
        store.migrate(deferred=True)
        try:
            messages = []
            for _ in range(2):  # the failure is not remembered as done
                with pytest.raises(BackendError) as raised:
                    store.list_schemas()
                messages.append(raised.value.one_line())
            assert messages[0] == messages[1]
            assert "not migrated" not in messages[0]  # the reason is the migration's
        finally:
            store.close()

class TestSqliteMetadataStore(MetadataStoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/nested/metadata.db"

    @pytest.fixture
    def unreachable_url(self, tmp_path: Path) -> str:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return f"sqlite:///{blocker}/metadata.db"

    def test_constructor_does_not_create_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "metadata.db"
        store = SqlMetadataStore(f"sqlite:///{path}")
        store.close()
        assert not path.parent.exists()
        store.migrate()
        store.close()
        assert path.is_file()

    def test_concurrent_migrations_of_separate_databases(self, tmp_path: Path) -> None:
        # No database lock serialises these: only the store's own process-wide lock does.
        workers = 4
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def migrate(worker: int) -> None:
            own = SqlMetadataStore(f"sqlite:///{tmp_path}/db{worker}/metadata.db")
            try:
                barrier.wait()
                for _ in range(3):
                    own.migrate()
                assert len(own.insert_schemas([schema(f"s{worker}")])) == 1
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.close()

        threads = [threading.Thread(target=migrate, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert not any(thread.is_alive() for thread in threads)
        assert errors == []

    def test_uses_write_ahead_logging(self, store: MetadataStore, url: str) -> None:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        finally:
            engine.dispose()


@pytest.mark.postgres
class TestPostgresMetadataStore(MetadataStoreContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def unreachable_url(self) -> str:
        return "postgresql://flywheel:secret@127.0.0.1:1/test"

    def test_plain_postgres_urls_use_psycopg(self, store: MetadataStore, url: str) -> None:
        store.insert_schemas([schema("click")])
        for scheme in ("postgresql://", "postgres://"):
            plain = SqlMetadataStore(url.replace("postgresql+psycopg://", scheme, 1))
            try:
                plain.migrate()  # already at head, in the same search_path schema
                assert [r.name for r in plain.list_schemas()] == ["click"]
            finally:
                plain.close()


def test_normalise_url() -> None:
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:////tmp/x.db").drivername == "sqlite"
