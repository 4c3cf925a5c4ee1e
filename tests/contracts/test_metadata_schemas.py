"""The `SchemaCatalog` contract: schema versions stored and fetched, on every backend."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from flywheel._core.errors import SchemaDefinitionError
from flywheel._core.metadata.schemas import SchemaCatalog, SchemaRecord
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.schemas import SqlSchemaCatalog
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite


def schema(name: str, version: str = "1-0-0", body: str = '{"type":"object"}') -> SchemaRecord:
    major, minor, patch = (int(part) for part in version.split("-"))
    return SchemaRecord(vendor="com.acme", name=name, format="jsonschema", major=major,
                        minor=minor, patch=patch, body=body, sha256=f"sha-of-{body}")


class SchemaCatalogContract(MetadataContract):
    @pytest.fixture
    def catalog(self, db: Database) -> SchemaCatalog:
        return SqlSchemaCatalog(db)

    def test_schemas_roundtrip_in_key_order(self, catalog: SchemaCatalog) -> None:
        when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        given = [schema("view", "2-0-0"), schema("click", "1-0-1"), schema("click", "1-0-0")]
        given[0] = dataclasses.replace(given[0], registered_at=when)

        assert catalog.insert_schemas(given) == {g.version_key for g in given}

        listed = catalog.list_schemas()
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

    def test_a_stored_version_is_left_as_it_is_and_the_batch_refused(
            self, catalog: SchemaCatalog) -> None:
        """Checked in the insert's own transaction, so a batch is stored whole or not at all
        even when another writer registered one of its versions a moment before."""
        click = schema("click", body="{}")
        assert catalog.insert_schemas([click]) == {click.version_key}
        assert catalog.insert_schemas([click, schema("view")]) == {schema("view").version_key}
        changed = schema("click", body='{"changed":1}')
        with pytest.raises(SchemaDefinitionError, match="already registered with other content"):
            catalog.insert_schemas([changed, schema("other")])
        assert [(r.name, r.body) for r in catalog.list_schemas()] == [("click", "{}"),
                                                                     ("view", schema("view").body)]

    def test_empty_batch_stores_nothing(self, catalog: SchemaCatalog) -> None:
        assert catalog.insert_schemas([]) == set()
        assert catalog.get_schemas([]) == {}
        assert catalog.list_schemas() == []

    def test_get_schemas_returns_the_stored_among_the_keys(self, catalog: SchemaCatalog) -> None:
        given = [schema(f"s{i:04d}") for i in range(1_200)]  # more keys than one IN query takes
        catalog.insert_schemas(given)
        missing = schema("missing").version_key
        found = catalog.get_schemas([*(g.version_key for g in given[::2]), missing])
        assert sorted(found) == sorted(g.version_key for g in given[::2])
        first = found[given[0].version_key]
        assert (first.body, first.sha256) == (given[0].body, given[0].sha256)


class TestSqliteSchemaCatalog(OnSqlite, SchemaCatalogContract):
    pass


@pytest.mark.postgres
class TestPostgresSchemaCatalog(OnPostgres, SchemaCatalogContract):
    pass
