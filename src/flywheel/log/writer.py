"""Group commit: concurrent callers share one atomic commit per table.

Callers hand prepared Arrow batches to `submit` and wait on the returned future, which
resolves only after the commit holding their rows is durable. While one commit is being
written the next batches queue up, so throughput grows with load instead of latency.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import pyarrow as pa

from flywheel._core.errors import LogUnavailableError
from flywheel._core.text import first_line
from flywheel.log.store import GroupOutcome, LogStore
from flywheel.schemas.keys import LogTableRef
from flywheel.tables.delta import DeltaHandle

log = logging.getLogger("flywheel.log")


@dataclass(slots=True)
class CommitRequest:
    tables: dict[LogTableRef, tuple[pa.Schema, pa.Table]]
    bad_rows: pa.Table | None = None
    future: Future[CommitOutcome] = field(default_factory=Future)


@dataclass(slots=True)
class CommitOutcome:
    stored: int = 0
    duplicates: int = 0
    offsets: dict[str, int] = field(default_factory=dict)


_STOP = object()


class LogWriter:
    def __init__(self, store: LogStore, *, linger_ms: float = 2.0,
                 compact_min_files: int = 32) -> None:
        self._store = store
        self._linger = linger_ms / 1000
        self._compact_min_files = compact_min_files
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._appends: dict[str, tuple[DeltaHandle, int]] = {}
        self._compactor: threading.Thread | None = None
        self._compact_failures = 0
        self._counts_lock = threading.Lock()
        self._compact_not_before = 0.0

    def submit(self, request: CommitRequest) -> Future[CommitOutcome]:
        self._ensure_started()
        self._queue.put(request)
        return request.future

    def write(self, request: CommitRequest) -> CommitOutcome:
        return self.submit(request).result()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._compactor is not None:
            self._compactor.join()
            self._compactor = None

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="flywheel-log-writer",
                                                daemon=True)
                self._thread.start()

    def _next_group(self) -> tuple[list[CommitRequest], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        group = [first]
        deadline = time.monotonic() + self._linger
        stop = False
        while True:
            timeout = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            group.append(item)
        return [g for g in group if isinstance(g, CommitRequest)], stop

    def _loop(self) -> None:
        while True:
            group, stop = self._next_group()
            if group:
                self._commit_group(group)
            if stop:
                return

    def _commit_group(self, group: list[CommitRequest]) -> None:
        try:
            outcomes = self._commit(group)
        except Exception as exc:
            if len(group) > 1:
                # Nothing of the group was stored. Commit each request on its own, so that
                # one request that cannot be stored fails alone, not its neighbours.
                for request in group:
                    self._commit_group([request])
                return
            log.error("log commit failed, nothing of the request was stored: %s",
                      first_line(exc))
            log.debug("the failed commit", exc_info=True)
            group[0].future.set_exception(LogUnavailableError(
                f"the log could not commit: {first_line(exc)}",
                hint="nothing in this request was stored; retry it"))
            return
        for request, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)
        self._maybe_compact()

    def _commit(self, group: list[CommitRequest]) -> list[CommitOutcome | LogUnavailableError]:
        tables: dict[LogTableRef, tuple[pa.Schema, list[pa.Table]]] = {}
        for request in group:
            for ref, (schema, data) in request.tables.items():
                tables.setdefault(ref, (schema, []))[1].append(data)
        merged = {ref: (schema, pa.concat_tables(parts, promote_options="default"))
                  for ref, (schema, parts) in tables.items()}
        bad = [r.bad_rows for r in group if r.bad_rows is not None and r.bad_rows.num_rows]
        with self._store.lock:
            result = self._store.commit_group(merged, pa.concat_tables(bad) if bad else None)
        for ref, appended in result.tables.items():
            if appended.version is not None:
                self._count_append(self._store.handle(ref))
        if bad:
            self._count_append(self._store.bad_rows())
        return _per_request(group, result)

    def _count_append(self, handle: DeltaHandle) -> None:
        with self._counts_lock:
            _, count = self._appends.get(handle.uri, (handle, 0))
            self._appends[handle.uri] = (handle, count + 1)

    def _maybe_compact(self) -> None:
        if self._compactor is not None and self._compactor.is_alive():
            return
        if time.monotonic() < self._compact_not_before:
            return
        with self._counts_lock:
            due = [h for h, n in self._appends.values() if n >= self._compact_min_files]
            for handle in due:
                self._appends[handle.uri] = (handle, 0)
        if not due:
            return
        # Compaction rewrites files without changing data; it commits under the writer
        # lock but plans and writes beside appends, on its own thread, so it never holds
        # up an acknowledgement for long.
        self._compactor = threading.Thread(target=self._compact, args=(due,), daemon=True,
                                           name="flywheel-log-compactor")
        self._compactor.start()

    def _compact(self, handles: list[DeltaHandle]) -> None:
        failed = False
        for handle in handles:
            try:
                self._store.compact(handle, wait=False, tiered=True)
            except Exception as exc:
                failed = True
                log.error("automatic compaction of %s failed (the log is unchanged; it is "
                          "tried again later): %s", handle.uri, first_line(exc))
                log.debug("the failed compaction", exc_info=True)
                with self._counts_lock:  # the writer thread counts commits meanwhile
                    _, count = self._appends.get(handle.uri, (handle, 0))
                    self._appends[handle.uri] = (handle, count + self._compact_min_files)
        # Back off after a failure (a full disk, say) instead of failing every few commits.
        self._compact_failures = self._compact_failures + 1 if failed else 0
        delay = min(2.0 ** self._compact_failures, 60.0) if failed else 0.0
        self._compact_not_before = time.monotonic() + delay


def _per_request(group: list[CommitRequest], result: GroupOutcome,
                 ) -> list[CommitOutcome | LogUnavailableError]:
    """Split a group's outcome by request, in the order their rows were concatenated."""
    outcomes: list[CommitOutcome | LogUnavailableError] = []
    starts: dict[LogTableRef, int] = {}
    for request in group:
        outcome = CommitOutcome()
        lost = sorted(str(ref) for ref in request.tables if ref in result.unstored)
        for ref, (_, table) in request.tables.items():
            if ref in result.unstored:
                continue
            appended = result.tables[ref]
            start = starts.get(ref, 0)
            starts[ref] = start + table.num_rows
            stored = sum(appended.kept[start:start + table.num_rows])
            outcome.stored += stored
            outcome.duplicates += table.num_rows - stored
            if appended.version is not None:
                outcome.offsets[str(ref)] = appended.version
        if lost:
            kept = sorted(set(map(str, request.tables)) - set(lost))
            outcomes.append(LogUnavailableError(
                f"the log could not commit {', '.join(lost)}: "
                f"{result.unstored[LogTableRef.parse(lost[0])]}; the events of "
                f"{', '.join(kept)} were stored",
                hint="retry the request: events with an event_id are stored at most once"))
        else:
            outcomes.append(outcome)
    return outcomes
