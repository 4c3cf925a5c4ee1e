"""The `MetadataStore` contract, run against every metadata backend on a real database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from flywheel._core.errors import BackendError, FlywheelError, SchemaDefinitionError
from flywheel._core.metadata import MetadataStore, SchemaRecord, TableVersionRecord, TokenRecord
from flywheel.backends.metadata import tables
from flywheel.backends.metadata.engine import normalise_url
from flywheel.backends.metadata.sql import SqlMetadataStore


def schema(name: str, version: str = "1-0-0", body: str = '{"type":"object"}') -> SchemaRecord:
    major, minor, patch = (int(part) for part in version.split("-"))
    return SchemaRecord(
        vendor="com.acme",
        name=name,
        format="jsonschema",
        major=major,
        minor=minor,
        patch=patch,
        body=body,
        sha256=f"sha-of-{body}",
    )


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
        store.add_schemas([schema("click")])
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
            assert store.add_schemas([schema("click")]) == 1
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

    def test_schemas_roundtrip_in_key_order(self, store: MetadataStore) -> None:
        when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        given = [schema("view", "2-0-0"), schema("click", "1-0-1"), schema("click", "1-0-0")]
        given[0] = dataclasses.replace(given[0], registered_at=when)

        assert store.add_schemas(given) == 3

        listed = store.list_schemas()
        assert [r.key for r in listed] == [
            "iglu:com.acme/click/jsonschema/1-0-0",
            "iglu:com.acme/click/jsonschema/1-0-1",
            "iglu:com.acme/view/jsonschema/2-0-0",
        ]
        assert [(r.body, r.sha256) for r in listed] == [(g.body, g.sha256) for g in given[::-1]]
        view = listed[2]
        assert view.registered_at == when
        assert view.registered_at is not None and view.registered_at.utcoffset() == dt.timedelta(0)
        assert all(r.registered_at and r.registered_at.tzinfo == dt.UTC for r in listed)

    def test_identical_re_add_is_skipped(self, store: MetadataStore) -> None:
        assert store.add_schemas([schema("click")]) == 1
        assert store.add_schemas([schema("click"), schema("click")]) == 0
        assert store.add_schemas([schema("click"), schema("view")]) == 1
        assert len(store.list_schemas()) == 2

    def test_empty_batch_adds_nothing(self, store: MetadataStore) -> None:
        assert store.add_schemas([]) == 0
        assert store.list_schemas() == []

    def test_changed_schema_is_refused_and_batch_rolled_back(self, store: MetadataStore) -> None:
        store.add_schemas([schema("click", body="{}")])

        with pytest.raises(SchemaDefinitionError, match=r"com\.acme/click/jsonschema/1-0-0"):
            store.add_schemas([schema("new"), schema("click", body='{"changed":1}')])

        assert [(r.name, r.body) for r in store.list_schemas()] == [("click", "{}")]

    def test_conflicting_duplicates_in_one_batch_are_refused(self, store: MetadataStore) -> None:
        with pytest.raises(SchemaDefinitionError, match="click"):
            store.add_schemas([schema("click", body="{}"), schema("click", body="[]")])
        assert store.list_schemas() == []

    def test_tokens(self, store: MetadataStore) -> None:
        store.add_token(TokenRecord("ci", "h1", ("ingest", "read")))
        store.add_token(TokenRecord("admin", "h2", ("admin",)))
        store.add_token(TokenRecord("none", "h3", ()))

        found = store.find_token("h1")
        assert found is not None
        assert (found.name, found.scopes) == ("ci", ("ingest", "read"))
        assert found.created_at is not None and found.created_at.tzinfo == dt.UTC
        assert store.find_token("nope") is None
        assert [(t.name, t.scopes) for t in store.list_tokens()] == [
            ("admin", ("admin",)),
            ("ci", ("ingest", "read")),
            ("none", ()),
        ]

        assert store.delete_token("ci") is True
        assert store.delete_token("ci") is False
        assert store.find_token("h1") is None
        assert [t.name for t in store.list_tokens()] == ["admin", "none"]

    def test_publishable_keys_keep_their_limits(self, store: MetadataStore) -> None:
        store.add_token(TokenRecord("web", "k1", (), kind="publishable", app_ids=("shop", "blog"),
                                    origins=("https://shop.example",), rate=25.5, key="pk_1"))
        store.add_token(TokenRecord("open", "k2", (), kind="publishable", app_ids=("app",),
                                    key="pk_2"))
        web = store.find_token("k1")
        assert web is not None
        assert (web.kind, web.app_ids, web.origins, web.rate, web.key) == (
            "publishable", ("shop", "blog"), ("https://shop.example",), 25.5, "pk_1")
        listed = {t.name: t for t in store.list_tokens()}
        assert (listed["open"].origins, listed["open"].rate) == ((), None)
        store.add_token(TokenRecord("ci", "h1", ("ingest",)))
        bearer = store.find_token("h1")
        assert bearer is not None and (bearer.kind, bearer.key, bearer.app_ids) == (
            "bearer", None, ())
        assert store.delete_token("web") is True and store.find_token("k1") is None

    def test_token_name_and_hash_are_unique(self, store: MetadataStore) -> None:
        store.add_token(TokenRecord("ci", "h1", ("ingest",)))
        with pytest.raises(Exception, match="already exists"):
            store.add_token(TokenRecord("ci", "h2", ("read",)))
        with pytest.raises(Exception, match="already exists"):
            store.add_token(TokenRecord("other", "h1", ("read",)))
        assert [(t.name, t.sha256) for t in store.list_tokens()] == [("ci", "h1")]

    def test_claim_recoveries_claims_each_id_once(self, store: MetadataStore) -> None:
        assert store.claim_recoveries([]) == set()
        assert store.claim_recoveries([("b1", "e1"), ("b2", "e2"), ("b1", "e9")]) == {"b1", "b2"}
        assert store.claim_recoveries([("b2", "e3"), ("b3", "e4")]) == {"b3"}
        assert store.claim_recoveries([("b1", "e5")]) == set()
        assert store.recovered_ids() == {"b1", "b2", "b3"}

    def test_concurrent_claims_never_overlap(self, store: MetadataStore, url: str) -> None:
        ids = [f"bad-{i:04d}" for i in range(300)]
        workers = 4
        barrier = threading.Barrier(workers)
        claims: list[set[str]] = [set() for _ in range(workers)]
        errors: list[BaseException] = []

        def claim(worker: int) -> None:
            own = SqlMetadataStore(url)  # each caller has its own engine and connections
            try:
                rng = random.Random(worker)
                barrier.wait()
                for _ in range(5):
                    batch = rng.sample(ids, 120)  # overlapping, in different orders
                    claims[worker] |= own.claim_recoveries((i, f"event-{i}") for i in batch)
                claims[worker] |= own.claim_recoveries((i, f"event-{i}") for i in ids)
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.close()

        threads = [threading.Thread(target=claim, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert set().union(*claims) == set(ids)
        assert sum(len(c) for c in claims) == len(ids)  # no id claimed by two callers
        assert store.recovered_ids() == set(ids)

    def test_table_versions_roundtrip_in_order(self, store: MetadataStore) -> None:
        later = TableVersionRecord("daily", 2, "incremental", "c" * 64,
                                   '{"carts": {"kind": "log", "after": 3, "upto": 5}}', 10, 4)
        first = TableVersionRecord("daily", 1, "full", "c" * 64,
                                   '{"carts": {"kind": "log", "after": -1, "upto": 3}}', 30, 9,
                                   content_hash="h" * 64)
        store.add_table_version(later)
        store.add_table_version(first)
        store.add_table_version(TableVersionRecord("other", 1, "full", "d", "{}", 0, 0))
        versions = store.table_versions("daily")
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].content_hash == "h" * 64 and versions[1].rows_in == 10
        assert versions[0].created_at is not None and versions[0].created_at.tzinfo is not None
        assert store.table_versions("missing") == []
        with pytest.raises(FlywheelError, match="already recorded"):
            store.add_table_version(first)

    def test_cursors_are_set_and_moved(self, store: MetadataStore) -> None:
        assert store.get_cursor("materialize:user") is None
        store.set_cursor("materialize:user", '{"version": 3}')
        store.set_cursor("materialize:user", '{"version": 5}')
        store.set_cursor("other", "x")
        assert store.get_cursor("materialize:user") == '{"version": 5}'
        assert store.get_cursor("other") == "x"

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
                assert own.add_schemas([schema(f"s{worker}")]) == 1
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
        store.add_schemas([schema("click")])
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
