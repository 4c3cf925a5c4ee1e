"""The one path every door uses: prepare, commit (grouped), report, alert."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from flywheel._core.clock import utc_now_us
from flywheel._core.ids import new_ids
from flywheel.ingest.alerts import BadRowsAlarm
from flywheel.ingest.prepare import Limits, Prepared, Preparer
from flywheel.ingest.result import IngestError, IngestResult
from flywheel.log.badrows import bad_rows_table
from flywheel.log.writer import CommitOutcome, CommitRequest, LogWriter
from flywheel.schemas.registry import SchemaRegistry, VersionSpec

DEFAULT_CHUNK = 50_000


class RegistryView:
    """The registry ingestion reads, refreshed from the metadata store on an unknown key
    (at most once a second), so a running server picks up `flywheel apply` by itself."""

    def __init__(self, load: Callable[[], SchemaRegistry], min_interval: float = 1.0) -> None:
        self._load = load
        self._registry = load()
        self._min_interval = min_interval
        self._refreshed = time.monotonic()
        self._lock = threading.Lock()

    @property
    def current(self) -> SchemaRegistry:
        return self._registry

    def lookup(self, uri: str) -> VersionSpec | None:
        spec = self._registry.get(uri)
        if spec is not None:
            return spec
        with self._lock:
            if time.monotonic() - self._refreshed >= self._min_interval:
                self._registry = self._load()
                self._refreshed = time.monotonic()
        return self._registry.get(uri)

    def reload(self) -> None:
        with self._lock:
            self._registry = self._load()
            self._refreshed = time.monotonic()


class Ingestor:
    def __init__(self, registry: RegistryView, writer: LogWriter, limits: Limits,
                 alarm: BadRowsAlarm | None = None) -> None:
        self._registry = registry
        self._writer = writer
        self._limits = limits
        self._alarm = alarm

    def ingest(self, events: Iterable[Any], *, door: str = "sdk", chunk_size: int = DEFAULT_CHUNK,
               on_progress: Callable[[int], None] | None = None,
               fallback_id: Callable[[int], str] | None = None) -> IngestResult:
        """Ingest parsed events (dicts), committing chunk by chunk; validation of the next
        chunk overlaps the commit of the previous one. An event without an `event_id`
        takes `fallback_id(position)` when given: stable ids make a re-send safe."""
        total = IngestResult()
        pending: tuple[Future[CommitOutcome], Prepared, int, int] | None = None
        shift = 0
        iterator = iter(events)
        while True:
            chunk = list(itertools.islice(iterator, chunk_size))
            ids = None if fallback_id is None else [fallback_id(shift + i)
                                                    for i in range(len(chunk))]
            submitted = self._submit(chunk, None, door, fallback_ids=ids) if chunk else None
            if pending is not None:
                self._finish(*pending, total)
                if on_progress is not None:
                    on_progress(pending[2])
            if submitted is None:
                return total
            pending = (*submitted, len(chunk), shift)
            shift += len(chunk)

    def ingest_prepared(self, chunks: Iterable[tuple[Prepared, int]], *, door: str,
                        ) -> IngestResult:
        """Commit chunks prepared elsewhere (the column-wise file path): each is a
        `Prepared` and the time it was prepared at (microseconds), its bad rows at positions
        within the chunk. As in `ingest`, the next chunk is prepared while one commits."""
        total = IngestResult()
        pending: tuple[Future[CommitOutcome], Prepared, int, int] | None = None
        shift = 0
        for prepared, now in chunks:
            received = prepared.accepted_positions + len(prepared.bad)
            submitted = self._commit_prepared(prepared, now, door)
            if pending is not None:
                self._finish(*pending, total)
            pending = (submitted, prepared, received, shift)
            shift += received
        if pending is not None:
            self._finish(*pending, total)
        return total

    def row_preparer(self, id_for: Callable[[int], str | None] | None = None) -> Preparer:
        """The row path, with this ingestor's schemas and limits."""
        return Preparer(self._registry.lookup, self._limits, id_for=id_for)

    @property
    def limits(self) -> Limits:
        return self._limits

    def ingest_raw(self, chunks: Sequence[bytes], items: Sequence[Any], *, door: str,
                   fallback_ids: Sequence[str] | None = None) -> IngestResult:
        """Ingest one request: `items` parsed from `chunks`, which are kept for bad rows."""
        return self.begin_raw(chunks, items, door=door, fallback_ids=fallback_ids).finish()

    def begin_raw(self, chunks: Sequence[bytes], items: Sequence[Any], *, door: str,
                  fallback_ids: Sequence[str] | None = None) -> PendingIngest:
        """Validate and hand to the writer; `PendingIngest.future` resolves once durable.

        Async servers await the future instead of parking a thread on it. Events without
        an `event_id` take `fallback_ids[i]` when given (stable ids make resending safe)."""
        future, prepared = self._submit(items, chunks, door, fallback_ids=fallback_ids)
        return PendingIngest(self, future, prepared, len(items))

    def ingest_with_ids(self, items: Sequence[Any], raws: Sequence[bytes],
                        fallback_ids: Sequence[str], *, door: str,
                        fallback_times: Sequence[str | None] | None = None,
                        dry_run: bool = False) -> tuple[IngestResult, list[int]]:
        """Ingest without storing rejects (recovery): events lacking an id or a time take
        `fallback_ids[i]` / `fallback_times[i]`. With `dry_run`, validate only.

        Returns the result and the positions that passed (stored or already present)."""
        times = None if fallback_times is None else fallback_times.__getitem__
        preparer = Preparer(self._registry.lookup, self._limits,
                            id_for=fallback_ids.__getitem__, time_for=times)
        prepared = preparer.prepare(items, raws, utc_now_us(), door)
        rejected = {b.index for b in prepared.bad}
        passed = [i for i in range(len(items)) if i not in rejected]
        if dry_run:
            return IngestResult(rejected=len(rejected)), passed
        future = self._writer.submit(CommitRequest(tables=prepared.tables))
        result = IngestResult()
        self._finish(future, prepared, len(items), 0, result, observe=False)
        return result, passed

    def _submit(self, items: Sequence[Any], raws: Sequence[bytes] | None, door: str,
                fallback_ids: Sequence[str] | None = None,
                ) -> tuple[Future[CommitOutcome], Prepared]:
        now = utc_now_us()
        id_for = None if fallback_ids is None else fallback_ids.__getitem__
        preparer = Preparer(self._registry.lookup, self._limits, id_for=id_for)
        prepared = preparer.prepare(items, raws, now, door)
        return self._commit_prepared(prepared, now, door), prepared

    def _commit_prepared(self, prepared: Prepared, now: int, door: str,
                         ) -> Future[CommitOutcome]:
        bad_table = None
        if prepared.bad:
            prepared.bad.sort(key=lambda b: b.index)
            bad_table = bad_rows_table(prepared.bad, new_ids(len(prepared.bad)), door, now)
        request = CommitRequest(tables=prepared.tables, bad_rows=bad_table)
        return self._writer.submit(request)

    def _finish(self, future: Future[CommitOutcome], prepared: Prepared, received: int,
                shift: int, total: IngestResult, observe: bool = True) -> None:
        outcome = future.result()
        bad = sorted(prepared.bad, key=lambda b: b.index)
        result = IngestResult(
            accepted=outcome.stored, rejected=len(bad), duplicates=outcome.duplicates,
            errors=[IngestError(b.index, b.reason, b.message,
                                tuple(v.as_dict() for v in b.errors)) for b in bad],
            offsets=outcome.offsets,
        )
        total.merge(result, shift)
        if observe and self._alarm is not None:
            self._alarm.observe(received, len(bad))


class PendingIngest:
    """An ingest handed to the writer, not yet acknowledged."""

    def __init__(self, ingestor: Ingestor, future: Future[CommitOutcome], prepared: Prepared,
                 received: int) -> None:
        self.future = future
        self._ingestor = ingestor
        self._prepared = prepared
        self._received = received

    def finish(self) -> IngestResult:
        """Wait for the commit (if it is not done) and report."""
        result = IngestResult()
        self._ingestor._finish(self.future, self._prepared, self._received, 0, result)
        return result
