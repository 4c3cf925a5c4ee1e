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
from flywheel.log.store import LogStore
from flywheel.log.tables import DeltaHandle
from flywheel.schemas.keys import LogTableRef

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
            log.exception("log commit failed; %d request(s) not acknowledged", len(group))
            error = LogUnavailableError(f"the log could not commit: {exc}".splitlines()[0],
                                        hint="nothing in this request was stored; retry it")
            for request in group:
                request.future.set_exception(error)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            request.future.set_result(outcome)
        self._maybe_compact()

    def _commit(self, group: list[CommitRequest]) -> list[CommitOutcome]:
        outcomes = [CommitOutcome() for _ in group]
        refs = sorted({ref for request in group for ref in request.tables})
        with self._store.lock:
            for ref in refs:
                self._commit_table(ref, group, outcomes)
            bad = [r.bad_rows for r in group if r.bad_rows is not None and r.bad_rows.num_rows]
            if bad:
                self._store.append_bad_rows(pa.concat_tables(bad))
                self._count_append(self._store.bad_rows())
        return outcomes

    def _commit_table(self, ref: LogTableRef, group: list[CommitRequest],
                      outcomes: list[CommitOutcome]) -> None:
        members = [(i, r.tables[ref]) for i, r in enumerate(group) if ref in r.tables]
        schema = members[-1][1][0]
        data = pa.concat_tables([t for _, (_, t) in members], promote_options="default")
        outcome = self._store.append_events(ref, schema, data)
        if outcome.version is not None:
            self._count_append(self._store.handle(ref))
        start = 0
        for i, (_, table) in members:
            stored = sum(outcome.kept[start:start + table.num_rows])
            outcomes[i].stored += stored
            outcomes[i].duplicates += table.num_rows - stored
            start += table.num_rows
            if outcome.version is not None:
                outcomes[i].offsets[str(ref)] = outcome.version

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
                self._store.compact(handle, wait=False)
            except Exception:
                failed = True
                log.exception("automatic compaction of %s failed; the log is unchanged and "
                              "compaction is tried again later", handle.uri)
                with self._counts_lock:  # the writer thread counts commits meanwhile
                    _, count = self._appends.get(handle.uri, (handle, 0))
                    self._appends[handle.uri] = (handle, count + self._compact_min_files)
        # Back off after a failure (a full disk, say) instead of failing every few commits.
        self._compact_failures = self._compact_failures + 1 if failed else 0
        delay = min(2.0 ** self._compact_failures, 60.0) if failed else 0.0
        self._compact_not_before = time.monotonic() + delay
