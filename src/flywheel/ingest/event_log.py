"""`project.log`: read, inspect and repair the event log, over the stores it is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel._core.errors import InputError
from flywheel._core.metadata.recoveries import Recoveries
from flywheel.ingest.ingestor import Ingestor, RegistryView
from flywheel.ingest.recover import FixUp, RecoverReport, recover
from flywheel.log.badrows import BAD_ROWS_TABLE
from flywheel.log.compaction import CompactionResult
from flywheel.log.dedupe import Receipts
from flywheel.log.store import LogStore
from flywheel.log.views import LogTableStats, log_stats, receipt_stats, tail
from flywheel.schemas.keys import LogTableRef

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EventLog"]


class EventLog:
    """The log of a project: its tables are those of the registered schemas and those
    already written (a table outlives the schema version that made it)."""

    def __init__(self, *, store: LogStore, schemas: RegistryView, recoveries: Recoveries,
                 ingestor: Ingestor) -> None:
        self._store = store
        self._schemas = schemas
        self._recoveries = recoveries
        self._ingestor = ingestor

    def tables(self) -> list[LogTableRef]:
        known = [t.ref for t in self._schemas.current.tables]
        return sorted(set(known) | set(self._store.tables()))

    def table(self, name: str) -> LogTableRef:
        """The log table `name` names; one the project does not have is an error."""
        known = self.tables()
        ref = LogTableRef.parse(name, known)
        if ref not in known:
            shown = ", ".join(map(str, known)) or "none yet: run `flywheel apply`"
            raise InputError(f"no log table {ref} in this project (known: {shown})",
                             hint="`flywheel log stats` lists the tables")
        return ref

    def read(self, table: str, *, as_of: int | None = None,
             columns: list[str] | None = None) -> pa.Table:
        """A log table as an Arrow table, as of offset `as_of` (time travel)."""
        return self._store.read(self.table(table), as_of, columns)

    def stats(self) -> list[LogTableStats]:
        """Per log table: events stored, distinct bad rows by reason, files, last offset."""
        return log_stats(self._store, self.tables())

    def receipts(self) -> list[Receipts]:
        """Per log table and door: events received, accepted, rejected, duplicates
        (received = accepted + rejected + duplicates, repeats of a bad input included)."""
        return receipt_stats(self._store, self.tables())

    def tail(self, table: str, count: int = 10, *, as_of: int | None = None) -> pa.Table:
        """The last `count` events committed, as of offset `as_of` (default: now)."""
        return tail(self._store, self.table(table), count, as_of)

    def bad_rows(self) -> pa.Table:
        """Rejected inputs as an Arrow table: one row per distinct input (door and bytes),
        with its reason and `receipts`, how many times it was received."""
        return self._store.read_bad_rows()

    def recovered_ids(self) -> set[str]:
        """The ids of the bad rows already recovered into the log."""
        return self._recoveries.recovered_ids()

    def recover(self, fix: FixUp | None = None, *, reason: str | None = None,
                schema: str | None = None, dry_run: bool = False) -> RecoverReport:
        """Send bad rows (fixed by `fix`, if given) through ingestion again; each is
        recovered at most once, however many processes recover at the same time."""
        return recover(self._store, self._recoveries, self._ingestor, fix, reason, schema,
                       dry_run)

    def compact(self, table: str | None = None) -> dict[str, CompactionResult]:
        """Merge small files of log tables (default: all, bad rows included); safe beside
        any number of writing and compacting processes. Waits for a compaction of the
        same table in another process to finish first."""
        store = self._store
        refs = [self.table(table)] if table else store.tables()
        results = {str(ref): store.compact(store.handle(ref)) for ref in refs}
        if table is None and store.bad_rows().exists():
            results[BAD_ROWS_TABLE] = store.compact(store.bad_rows())
        return results
