"""Thin access to Delta tables: create, append, read as of a version, changes, stats.

Reads go through the table's file list and Arrow's own Parquet reader; it is as fast as
Delta's dataset path and does not leave native threads behind at interpreter exit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from flywheel.tables import local_commit
from flywheel.tables.sql import quote_ident

if TYPE_CHECKING:
    import deltalake
    import pyarrow.dataset

PARTITION = "event_date"
CHANGE_TYPE = "_change_type"
COMMIT_VERSION = "_commit_version"
"""The change feed's column holding the version (offset) a row was committed in."""
_RENEW_AFTER_COMMITS = 64
TABLE_CONFIGURATION = {
    "delta.appendOnly": "true",
    # Change data feed lets readers take exactly the rows of commits after an offset.
    "delta.enableChangeDataFeed": "true",
    # Every offset stays readable: commit files are never expired.
    "delta.logRetentionDuration": "interval 36500 days",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Staged:
    """An append between `DeltaHandle.stage` and `publish`."""

    data: pa.Table
    merge: bool
    """The data brings columns the table does not have yet."""
    local: local_commit.StagedAppend | None = None
    """Files already written, when this package commits to the table itself."""


@dataclass(frozen=True, slots=True)
class TableStats:
    version: int
    files: int
    rows: int
    bytes: int


def _deltalake() -> Any:
    import deltalake

    return deltalake


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


class DeltaHandle:
    """One Delta table, with its handle kept warm between commits."""

    def __init__(self, uri: str, partition: str | None = PARTITION, *,
                 append_only: bool = True) -> None:
        self.uri = uri
        self._configuration = dict(TABLE_CONFIGURATION)
        if not append_only:  # derived tables are rebuilt and merged into
            del self._configuration["delta.appendOnly"]
        self.partition = partition
        self._table: Any = None
        self._commits_seen = 0
        self._head: int | None = None  # the newest version this handle knows of
        self._base = Path(uri.removeprefix("file://"))

    def exists(self) -> bool:
        if self._table is not None:
            return True
        return bool(_deltalake().DeltaTable.is_deltatable(self.uri))

    def _open(self) -> Any:
        # A long-lived handle gets slower with every commit it has seen (its write path
        # grows with the log it has replayed); a fresh load starts from the last
        # checkpoint. So the handle is renewed every few dozen commits.
        if self._table is None or self._commits_seen >= _RENEW_AFTER_COMMITS:
            self._table = _deltalake().DeltaTable(self.uri)
            self._commits_seen = 0
        elif self._may_have_moved(int(self._table.version())):
            self._table.update_incremental()
        return self._table

    def _may_have_moved(self, version: int) -> bool:
        """On a local disk one stat tells whether anyone committed after `version`
        (bringing a handle up to date costs milliseconds); elsewhere, assume so."""
        return not is_local(self.uri) or self._next_exists(version)

    def create(self, schema: pa.Schema) -> None:
        if self.exists():
            return
        if is_local(self.uri):
            Path(self.uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        self._table = _deltalake().DeltaTable.create(
            self.uri, schema, partition_by=[self.partition] if self.partition else None,
            configuration=self._configuration, mode="ignore",
        )

    def version(self) -> int | None:
        """The newest version (offset). On a local disk, commits this handle made itself or
        saw by name are counted without reloading the table."""
        if not self.exists():
            return None
        if is_local(self.uri) and self._table is not None:
            return self._latest()
        return int(self._open().version())

    def append(self, data: pa.Table, *, just_refreshed: bool = False) -> int:
        """Commit `data` atomically; returns the new version (the commit's offset).

        `just_refreshed` skips bringing the handle up to date when the caller just did."""
        return self.publish(self.stage(data, just_refreshed=just_refreshed))

    def stage(self, data: pa.Table, *, just_refreshed: bool = False) -> Staged:
        """First half of an append: on a local disk, the files are written (what can fail
        because of the data fails here) and nothing is visible yet; `publish` commits."""
        table = self._table if just_refreshed and self._table is not None else self._open()
        current = _schema_of(table)
        added = [f for f in data.schema if f.name not in current.names]
        if added and just_refreshed:  # grow the newest schema, not the one this handle knew
            table = self._open()
            current = _schema_of(table)
            added = [f for f in data.schema if f.name not in current.names]
        if not (is_local(self.uri) and self.protocol_is_simple(table)):
            return Staged(data=data, merge=bool(added))
        metadata = _grown_metadata(table, current, added) if added else None
        return Staged(data=data, merge=bool(added),
                      local=local_commit.stage_append(self._base, self.partition, data,
                                                      metadata))

    def publish(self, staged: Staged) -> int:
        """Commit what `stage` prepared; returns the new version."""
        if staged.local is not None:
            self._head = local_commit.publish_append(self._base, staged.local, self._latest())
            if staged.local.metadata is not None:
                self._table = None  # the schema changed: a fresh handle at the next use
            return self._head
        table = self._open()
        deltalake = _deltalake()
        deltalake.write_deltalake(
            table, staged.data, mode="append",
            partition_by=[self.partition] if self.partition else None,
            schema_mode="merge" if staged.merge else None,
            # Checkpoints are written by `checkpoint()` off the acknowledgement path.
            post_commithook_properties=deltalake.PostCommitHookProperties(
                create_checkpoint=False, cleanup_expired_logs=False),
        )  # the handle now stands at the new version
        self._commits_seen += 1
        self._head = int(table.version())
        return self._head

    def discard(self, staged: Staged) -> None:
        """Drop what `stage` wrote for an append that will not be published."""
        if staged.local is not None:
            staged.local.discard(self._base)

    def _latest(self) -> int:
        """The newest version on disk, from what this handle last knew, by stat calls."""
        head = max(self._head if self._head is not None else -1, int(self._table.version()))
        while self._next_exists(head):
            head += 1
        return head

    def _next_exists(self, version: int) -> bool:
        return Path(f"{self._base}/_delta_log/{version + 1:020d}.json").exists()

    @staticmethod
    def protocol_is_simple(table: Any) -> bool:
        """Can this package commit to `table` itself (see `local_commit`)?"""
        protocol = table.protocol()
        return bool(protocol.min_reader_version == 1 and protocol.min_writer_version <= 4)

    def read(self, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
        """The whole table as of `version` (default: latest)."""
        return self.dataset(version).to_table(columns=columns)

    def dataset(self, version: int | None = None) -> pyarrow.dataset.Dataset:
        """A lazy Arrow dataset of the table as of `version`: scanned in batches, with the
        table's schema (files written before a column was added give nulls for it)."""
        import pyarrow.dataset as ds

        table = self._at(version)
        schema = _schema_of(table)
        files = table.file_uris()
        if not files:
            return ds.dataset(schema.empty_table())
        base = self.uri.removeprefix("file://")
        partitioning = None
        if self.partition:
            partitioning = ds.partitioning(
                pa.schema([schema.field(self.partition)]), flavor="hive")
        return ds.dataset(
            [f.removeprefix("file://") for f in files], schema=schema, format="parquet",
            partitioning=partitioning, partition_base_dir=base,
        )

    def changes(self, after: int, upto: int | None = None,
                columns: list[str] | None = None, *, offsets: bool = True) -> pa.Table:
        """Rows committed in versions (after, upto]: the table's columns (or `columns`),
        in the table's types, and with `offsets` a last column `_commit_version`, the
        version each row was committed in. Only rows as committed: a merge's updated rows
        as they are after it, not as they were (nor rows it deleted). The change feed's own
        `_change_type` and `_commit_timestamp` are left out."""
        table = self._open()
        last = int(table.version()) if upto is None else upto
        if last <= after:
            return pa.table({})
        schema = _schema_of(table)
        names = schema.names if columns is None else list(columns)
        wanted = [*names, COMMIT_VERSION] if offsets else names
        reader = table.load_cdf(starting_version=after + 1, ending_version=last,
                                columns=[*wanted, CHANGE_TYPE])
        rows = pa.table(reader.read_all())
        # A merge's feed also holds each updated row as it was before (and rows deleted):
        # readers of the change feed take its rows as committed, so only those are given.
        committed = pc.is_in(rows[CHANGE_TYPE].cast(pa.string()),
                             value_set=pa.array(["insert", "update_postimage"]))
        rows = rows.select(wanted)
        # The change feed hands back view types (string_view); give readers the table's types.
        fields = [schema.field(n) if n in schema.names else _plain(rows.schema.field(n))
                  for n in rows.column_names]
        return rows.cast(pa.schema(fields)).filter(committed)

    def overwrite(self, data: Any) -> int:
        """Replace the whole content in one commit (readers see the old or the new table,
        never a mix); older versions stay readable. `data`: an Arrow table or reader."""
        deltalake = _deltalake()
        if is_local(self.uri):
            Path(self._base).mkdir(parents=True, exist_ok=True)
        # The first build creates the table: its version 0 is that build, not an empty one.
        deltalake.write_deltalake(
            self.uri, data, mode="overwrite", schema_mode="overwrite",
            partition_by=[self.partition] if self.partition else None,
            configuration=None if self.exists() else self._configuration,
            post_commithook_properties=deltalake.PostCommitHookProperties(
                create_checkpoint=False, cleanup_expired_logs=False))
        self._table = None  # a fresh handle at the next use
        return int(self._open().version())

    def can_publish_files(self) -> bool:
        """Can `publish_files` be used: a local table that is new or simple enough?"""
        return is_local(self.uri) and (not self.exists() or
                                       self.protocol_is_simple(self._open()))

    def staging_folder(self) -> Path:
        """A new folder inside the table for files not yet part of it."""
        folder = Path(self._base) / f"part-{uuid.uuid4()}"
        folder.mkdir(parents=True)
        return folder

    def publish_files(self, files: list[Path], schema: pa.Schema) -> int:
        """Make `files` (written under `staging_folder()`) the table's whole content, in one
        commit; older versions stay readable. Returns the new version."""
        if self.exists():
            table = self._open()
            head, table_id = self._latest(), str(table.metadata().id)
            actions = pa.table(table.get_add_actions(flatten=True))
            current = list(zip(actions.column("path").to_pylist(),
                               actions.column("size_bytes").to_pylist(), strict=True))
        else:
            head, table_id, current = -1, None, []
        self._head = local_commit.replace_all(Path(self._base), files, schema, head, table_id,
                                              self._configuration, current)
        self._table = None  # schema and files changed: a fresh handle at the next use
        return self._head

    def merge(self, data: pa.Table, keys: list[str]) -> int:
        """Insert `data`, replacing the rows whose `keys` match, in one commit."""
        table = self._open()
        predicate = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in keys)
        (table.merge(data, predicate=predicate, source_alias="s", target_alias="t")
         .when_matched_update_all().when_not_matched_insert_all().execute())
        self._table = None
        return int(self._open().version())

    def stats(self) -> TableStats | None:
        if not self.exists():
            return None
        table = self._open()
        actions = pa.table(table.get_add_actions(flatten=True))
        rows = actions.column("num_records").to_pylist() if actions.num_rows else []
        sizes = actions.column("size_bytes").to_pylist() if actions.num_rows else []
        return TableStats(int(table.version()), actions.num_rows, int(sum(r or 0 for r in rows)),
                          int(sum(sizes)))

    def fresh_table(self) -> deltalake.DeltaTable:
        """A delta-rs table of its own at the newest version, for work beside the writer
        (this handle's table belongs to the thread that commits)."""
        table: deltalake.DeltaTable = _deltalake().DeltaTable(self.uri)
        return table

    def compact(self, target_size: int | None = None) -> dict[str, Any]:
        """delta-rs's own compaction, then a checkpoint. The caller makes it safe beside
        other writers (the log holds its writer lock meanwhile); the content and what each
        offset means do not change."""
        if not self.exists():
            return {}
        deltalake = _deltalake()
        table = self.fresh_table()
        metrics: dict[str, Any] = table.optimize.compact(
            target_size=target_size, max_concurrent_tasks=1,
            post_commithook_properties=deltalake.PostCommitHookProperties(
                create_checkpoint=False, cleanup_expired_logs=False))
        table.create_checkpoint()
        return metrics

    def schema(self) -> pa.Schema:
        return _schema_of(self._open())

    def _at(self, version: int | None) -> Any:
        if version is None:
            return self._open()
        return _deltalake().DeltaTable(self.uri, version=version)


def _grown_metadata(table: Any, current: pa.Schema, added: list[pa.Field],
                    ) -> dict[str, object]:
    """The table's `metaData` action with `added` columns (nullable) at the end."""
    meta = table.metadata()
    grown = pa.schema([*current, *(f.with_nullable(True) for f in added)])
    return {"id": str(meta.id), "format": {"provider": "parquet", "options": {}},
            "schemaString": _deltalake().Schema.from_arrow(grown).to_json(),
            "partitionColumns": list(meta.partition_columns),
            "configuration": dict(meta.configuration), "createdTime": meta.created_time}


def _schema_of(table: Any) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def _plain(field: pa.Field) -> pa.Field:
    return field.with_type(pa.string()) if field.type == pa.string_view() else field
