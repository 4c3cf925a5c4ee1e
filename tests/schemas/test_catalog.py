"""Registering schema versions: immutable once registered, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from flywheel._core.errors import SchemaDefinitionError
from flywheel._core.metadata.schemas import SchemaCatalog, SchemaKey, SchemaRecord
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.schemas import SqlSchemaCatalog
from flywheel.schemas.catalog import register_schemas
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite
from tests.contracts.test_metadata_schemas import schema


class CompetingCatalog(SqlSchemaCatalog):
    """Another writer registers `competitor` just before this one inserts (after the check)."""

    def __init__(self, db: Database, competitor: SchemaRecord) -> None:
        super().__init__(db)
        self._competitor = competitor

    def insert_schemas(self, records: Sequence[SchemaRecord]) -> set[SchemaKey]:
        SqlSchemaCatalog(self._db).insert_schemas([self._competitor])
        return super().insert_schemas(records)


class RegistrationContract(MetadataContract):
    @pytest.fixture
    def catalog(self, db: Database) -> SchemaCatalog:
        return SqlSchemaCatalog(db)

    def test_identical_re_add_is_skipped(self, catalog: SchemaCatalog) -> None:
        assert register_schemas(catalog, [schema("click")]) == 1
        assert register_schemas(catalog, [schema("click"), schema("click")]) == 0
        assert register_schemas(catalog, [schema("click"), schema("view")]) == 1
        assert len(catalog.list_schemas()) == 2

    def test_empty_batch_adds_nothing(self, catalog: SchemaCatalog) -> None:
        assert register_schemas(catalog, []) == 0
        assert catalog.list_schemas() == []

    def test_changed_schema_is_refused_and_batch_rolled_back(self, catalog: SchemaCatalog) -> None:
        register_schemas(catalog, [schema("click", body="{}")])

        with pytest.raises(SchemaDefinitionError, match=r"com\.acme/click/jsonschema/1-0-0"):
            register_schemas(catalog, [schema("new"), schema("click", body='{"changed":1}')])

        assert [(r.name, r.body) for r in catalog.list_schemas()] == [("click", "{}")]

    def test_conflicting_duplicates_in_one_batch_are_refused(self, catalog: SchemaCatalog) -> None:
        with pytest.raises(SchemaDefinitionError, match="click"):
            register_schemas(catalog, [schema("click", body="{}"), schema("click", body="[]")])
        assert catalog.list_schemas() == []

    def test_a_version_registered_meanwhile_with_other_content_is_refused(
            self, db: Database) -> None:
        catalog = CompetingCatalog(db, schema("click", body='{"theirs":1}'))
        with pytest.raises(SchemaDefinitionError, match="already registered with other content"):
            register_schemas(catalog, [schema("click", body='{"ours":1}')])
        assert [r.body for r in catalog.list_schemas()] == ['{"theirs":1}']

    def test_a_batch_refused_for_a_version_registered_meanwhile_stores_nothing(
            self, db: Database) -> None:
        catalog = CompetingCatalog(db, schema("click", body='{"theirs":1}'))
        with pytest.raises(SchemaDefinitionError, match="already registered with other content"):
            register_schemas(catalog, [schema("view"), schema("click", body='{"ours":1}')])
        assert [r.name for r in catalog.list_schemas()] == ["click"]

    def test_the_same_version_registered_meanwhile_is_skipped(self, db: Database) -> None:
        catalog = CompetingCatalog(db, schema("click"))
        assert register_schemas(catalog, [schema("click"), schema("view")]) == 1
        assert [r.name for r in catalog.list_schemas()] == ["click", "view"]


class TestSqliteRegistration(OnSqlite, RegistrationContract):
    pass


@pytest.mark.postgres
class TestPostgresRegistration(OnPostgres, RegistrationContract):
    pass
