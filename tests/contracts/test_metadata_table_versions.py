"""The `TableVersions` contract: derived-table versions and cursors, on every backend."""

from __future__ import annotations

import pytest

from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.table_versions import TableVersionRecord, TableVersions
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.table_versions import SqlTableVersions
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite


class TableVersionsContract(MetadataContract):
    @pytest.fixture
    def store(self, db: Database) -> TableVersions:
        return SqlTableVersions(db)

    def test_table_versions_roundtrip_in_order(self, store: TableVersions) -> None:
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

    def test_cursors_are_set_and_moved(self, store: TableVersions) -> None:
        assert store.get_cursor("materialize:user") is None
        store.set_cursor("materialize:user", '{"version": 3}')
        store.set_cursor("materialize:user", '{"version": 5}')
        store.set_cursor("other", "x")
        assert store.get_cursor("materialize:user") == '{"version": 5}'
        assert store.get_cursor("other") == "x"


class TestSqliteTableVersions(OnSqlite, TableVersionsContract):
    pass


@pytest.mark.postgres
class TestPostgresTableVersions(OnPostgres, TableVersionsContract):
    pass
