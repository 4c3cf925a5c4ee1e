"""The one path every door takes: decode, validate and prepare, submit to the group-commit
writer, acknowledge (report and alert).

`Ingestor.begin_raw` (or `begin_prepared`) is its middle, preparing and handing to the
writer, and `PendingIngest.finish` its end. Each door has one entry: the SDK and the row
path of files `ingest`, NDJSON files `ingest_raw` (per chunk read), the column-wise file
path `ingest_prepared`, the HTTP doors (events, Snowplow) `ingest_async`, recovery
`ingest_with_ids`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from flywheel._core.clock import utc_now_us
from flywheel._core.ids import new_ids
from flywheel.ingest.alerts import BadRowsAlarm
from flywheel.ingest.prepare import Decode, Limits, Prepared, Preparer, decode_json_items
from flywheel.ingest.result import IngestError, IngestResult
from flywheel.log.badrows import bad_rows_table
from flywheel.log.writer import CommitOutcome, CommitRequest, LogWriter
from flywheel.schemas.registry import SchemaRegistry, VersionSpec

DEFAULT_CHUNK = 50_000
INLINE_EVENTS = 2_000
"""`ingest_async` prepares requests up to this many events on the event loop (cheaper
than a thread hop, and only two threads then contend for the interpreter: the loop and
the log writer); larger ones go to a worker thread so that they cannot stall others."""


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
    def __init__(self, *, registry: RegistryView, writer: LogWriter, limits: Limits,
                 alarm: BadRowsAlarm | None = None) -> None:
        self._registry = registry
        self._writer = writer
        self._limits = limits
        self._alarm = alarm

    @property
    def limits(self) -> Limits:
        return self._limits

    def row_preparer(self, id_for: Callable[[int], str | None] | None = None) -> Preparer:
        """The row path, with this ingestor's schemas and limits."""
        return Preparer(self._registry.lookup, self._limits, id_for=id_for)

    # The path: prepare and submit, then acknowledge (PendingIngest.finish) ---------------
    def begin_raw(self, raws: Sequence[bytes] | None, items: Sequence[Any], *, door: str,
                  fallback_ids: Sequence[str] | None = None) -> PendingIngest:
        """Validate and prepare `items` (parsed from `raws`, kept for bad rows; None: the
        items are what was received) and hand them to the writer; `PendingIngest.future`
        resolves once durable. Events without an `event_id` take `fallback_ids[i]` when
        given (stable ids make resending safe)."""
        now = utc_now_us()
        id_for = None if fallback_ids is None else fallback_ids.__getitem__
        prepared = self.row_preparer(id_for).prepare(items, raws, now, door)
        return self.begin_prepared(prepared, now, door=door)

    def begin_prepared(self, prepared: Prepared, now: int, *, door: str) -> PendingIngest:
        """Hand a chunk prepared elsewhere (at `now`, microseconds) to the writer, with its
        bad rows in the same commit."""
        bad_table = None
        if prepared.bad:
            prepared.bad.sort(key=lambda b: b.index)
            bad_table = bad_rows_table(prepared.bad, new_ids(len(prepared.bad)), door, now)
        future = self._writer.submit(CommitRequest(tables=prepared.tables, bad_rows=bad_table))
        received = prepared.accepted_positions + len(prepared.bad)
        return PendingIngest(future, prepared, received, self._alarm)

    # The doors' entries ------------------------------------------------------------------
    def ingest(self, events: Iterable[Any], *, door: str = "sdk", chunk_size: int = DEFAULT_CHUNK,
               on_progress: Callable[[int], None] | None = None,
               fallback_id: Callable[[int], str] | None = None) -> IngestResult:
        """Ingest parsed events (dicts), committing chunk by chunk; validation of the next
        chunk overlaps the commit of the previous one. An event without an `event_id`
        takes `fallback_id(position)` when given: stable ids make a re-send safe."""
        def submitted() -> Iterator[tuple[PendingIngest, int]]:
            iterator, shift = iter(events), 0
            while chunk := list(itertools.islice(iterator, chunk_size)):
                ids = None if fallback_id is None else [fallback_id(shift + i)
                                                        for i in range(len(chunk))]
                yield self.begin_raw(None, chunk, door=door, fallback_ids=ids), len(chunk)
                shift += len(chunk)

        return _overlapped(submitted(), on_progress)

    def ingest_prepared(self, chunks: Iterable[tuple[Prepared, int]], *, door: str,
                        ) -> IngestResult:
        """Commit chunks prepared elsewhere (the column-wise file path): each is a
        `Prepared` and the time it was prepared at (microseconds), its bad rows at positions
        within the chunk. As in `ingest`, the next chunk is prepared while one commits."""
        submitted = ((self.begin_prepared(prepared, now, door=door),
                      prepared.accepted_positions + len(prepared.bad))
                     for prepared, now in chunks)
        return _overlapped(submitted, None)

    def ingest_raw(self, chunks: Sequence[bytes], items: Sequence[Any], *, door: str,
                   fallback_ids: Sequence[str] | None = None) -> IngestResult:
        """Ingest one batch: `items` parsed from `chunks`, which are kept for bad rows."""
        return self.begin_raw(chunks, items, door=door, fallback_ids=fallback_ids).finish()

    async def ingest_async(self, raws: Sequence[bytes], *, door: str,
                           decode: Decode = decode_json_items) -> IngestResult:
        """Ingest one request of `raws` (each one event, kept for bad rows): decode,
        prepare and submit (on the loop up to `INLINE_EVENTS`, else in a worker thread),
        then await durability without holding a thread."""
        if not raws:  # `[]`: nothing to commit
            return IngestResult()

        def submit() -> PendingIngest:
            return self.begin_raw(raws, decode(raws), door=door)

        if len(raws) <= INLINE_EVENTS:
            pending = submit()
        else:
            import anyio.to_thread  # the server's dependency; the other doors do without

            pending = await anyio.to_thread.run_sync(submit)
        await asyncio.wrap_future(pending.future)
        return pending.finish()

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
        # No alarm: these rows were counted as bad when they first arrived.
        return PendingIngest(future, prepared, len(items), None).finish(), passed


def _overlapped(submitted: Iterator[tuple[PendingIngest, int]],
                on_progress: Callable[[int], None] | None) -> IngestResult:
    """Acknowledge each submitted chunk once the next one is submitted (the iterator
    prepares it), so that preparing one chunk overlaps the commit of the one before."""
    total = IngestResult()
    pending: tuple[PendingIngest, int] | None = None
    shift = 0
    for current in submitted:
        if pending is not None:
            shift = _acknowledge(pending, total, shift, on_progress)
        pending = current
    if pending is not None:
        _acknowledge(pending, total, shift, on_progress)
    return total


def _acknowledge(pending: tuple[PendingIngest, int], total: IngestResult, shift: int,
                 on_progress: Callable[[int], None] | None) -> int:
    ingest, received = pending
    total.merge(ingest.finish(), shift)
    if on_progress is not None:
        on_progress(received)
    return shift + received


class PendingIngest:
    """An ingest handed to the writer, not yet acknowledged."""

    def __init__(self, future: Future[CommitOutcome], prepared: Prepared, received: int,
                 alarm: BadRowsAlarm | None) -> None:
        self.future = future
        self._prepared = prepared
        self._received = received
        self._alarm = alarm

    def finish(self) -> IngestResult:
        """Wait for the commit (if it is not done), report, and tell the alarm."""
        outcome = self.future.result()
        bad = sorted(self._prepared.bad, key=lambda b: b.index)
        if self._alarm is not None:
            self._alarm.observe(self._received, len(bad))
        return IngestResult(
            accepted=outcome.stored, rejected=len(bad), duplicates=outcome.duplicates,
            errors=[IngestError(b.index, b.reason, b.message,
                                tuple(v.as_dict() for v in b.errors)) for b in bad],
            offsets=outcome.offsets,
        )
