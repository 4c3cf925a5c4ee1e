"""The prediction log: every prediction row becomes an event in the log, off the response
path.

`record` packs the events as the sink keeps them (for a committer process, encoded to
bytes) and appends them to a queue. One thread gathers what is queued for up to one log
interval (`LOG_INTERVAL_MS`, or until `_MAX_CHUNK` events wait) and hands the chunk to a
sink without waiting: `IngestSink` prepares it through the ingest path (door `predict`)
and submits it to this process's group-commit writer; `flywheel serve` uses
`ProcessSink` (serving/log_process.py), which sends it to a committing process of its own,
so that preparing and committing predictions never takes the serving interpreter's time.
Gathering is what keeps a quiet server cheap: without it every prediction would be a
commit of its own. `close` drains the queue and waits for every commit, so a clean
shutdown loses nothing; a crash loses what was not committed yet: the last log interval
and the commit in progress, and never more than `MAX_WAITING` predictions. A server that
predicts faster than its log commits, for long enough to have that many waiting, waits
for the log before it logs more (`record` blocks; off an event loop only, and the loop
sends its work to the deployment's thread while the log is behind): it slows to the pace
of its log, it does not let what a crash would lose grow.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from flywheel._core.errors import FlywheelError
from flywheel._core.text import first_line
from flywheel.ingest.ingestor import Ingestor, PendingIngest
from flywheel.ingest.result import IngestResult
from flywheel.serving.events import PREDICTION_DOOR

__all__ = ["LOG_INTERVAL_MS", "MAX_WAITING", "RETRY_DELAYS", "IngestSink", "LogSink",
           "Packed", "PredictionLog", "Settled", "committed_with_retries", "settled_of"]

_log = logging.getLogger("flywheel.serving")
_MAX_CHUNK = 5_000
LOG_INTERVAL_MS = 100.0
"""How long predictions gather before they are committed together."""
MAX_WAITING = 20_000
"""Predictions recorded and not yet committed, at most: what a crash can lose."""


@dataclass(frozen=True, slots=True)
class Settled:
    """A chunk the log answered for: stored (or already there), rejected into bad rows,
    or not logged at all (`failure`)."""

    ids: list[str]
    stored: int = 0
    rejected: int = 0
    rejection: str | None = None
    """The first rejected row's reason."""
    failure: str | None = None


def settled_of(ids: list[str], result: IngestResult) -> Settled:
    """A committed chunk's outcome: stored (or already there), and rejected."""
    return Settled(ids, stored=result.accepted + result.duplicates, rejected=result.rejected,
                   rejection=result.errors[0].message if result.errors else None)


@dataclass(frozen=True, slots=True)
class Packed:
    """One recorded batch of events, in the form its sink commits them from."""

    ids: list[str]
    payload: Any
    """The events as the sink keeps them: the list itself, or bytes for another process."""


class LogSink(Protocol):
    """Where gathered chunks go to be committed."""

    def pack(self, events: Sequence[dict[str, Any]]) -> Packed:
        """A recorded batch as this sink keeps it: called by `record`, on the recording
        thread, while the events are fresh in its caches (encoding them later, a whole
        chunk at once, held the GIL long enough to stall an event loop)."""

    def submit(self, chunk: list[Packed]) -> None:
        """Start committing the batches of `chunk` together, without waiting."""

    def settled(self, *, wait: bool) -> list[Settled]:
        """The chunks finished since the last call (with `wait`: every chunk submitted)."""

    def busy(self) -> bool:
        """Is a submitted chunk not settled yet?"""

    def close(self) -> None:
        """Release the sink, after `settled(wait=True)`."""


RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Seconds waited before each new attempt at a chunk whose commit failed on the log's side
(a 5xx: the log's storage or a backend unavailable): about 8 s in all before its
predictions are given up as not logged. Again is safe: the log keeps each prediction id
once, so a chunk that was stored after all comes back as duplicates."""


def committed_with_retries(first: Callable[[], IngestResult],
                           again: Callable[[], IngestResult] | None = None) -> IngestResult:
    """`first()`, and while that fails on the log's side, `again()` (default: `first`)
    after each wait of `RETRY_DELAYS`; the last failure is raised."""
    again = again or first
    try:
        return first()
    except Exception as exc:
        failure = exc
    for delay in RETRY_DELAYS:
        if not (isinstance(failure, FlywheelError) and failure.http_status >= 500):
            raise failure  # the chunk itself is wrong: trying again changes nothing
        _log.warning("a commit of predictions failed (%s); trying again in %.2f s",
                     first_line(failure), delay)
        time.sleep(delay)
        try:
            return again()
        except Exception as exc:
            failure = exc
    raise failure


_Submitted = tuple[PendingIngest | None, list[dict[str, Any]], list[str]]
"""A submitted chunk: its commit under way (None: it could not start), events and ids."""


class IngestSink:
    """Chunks committed by this process's ingestor (its group-commit writer)."""

    def __init__(self, *, ingestor: Ingestor) -> None:
        self._ingestor = ingestor
        self._pending: list[_Submitted] = []

    def pack(self, events: Sequence[dict[str, Any]]) -> Packed:
        return Packed([e["event_id"] for e in events], list(events))

    def submit(self, chunk: list[Packed]) -> None:
        ids = [i for packed in chunk for i in packed.ids]
        events = [e for packed in chunk for e in packed.payload]
        try:
            pending: PendingIngest | None = self._ingestor.begin_raw(
                None, events, door=PREDICTION_DOOR)
        except Exception:  # tried again, with waits, when the chunk is settled
            pending = None
        self._pending.append((pending, events, ids))

    def settled(self, *, wait: bool) -> list[Settled]:
        done: list[Settled] = []
        still: list[_Submitted] = []
        for pending, events, ids in self._pending:
            if not wait and pending is not None and not pending.future.done():
                still.append((pending, events, ids))
                continue
            again = partial(self._commit, events)
            try:
                result = committed_with_retries(
                    pending.finish if pending is not None else again, again)
            except Exception as exc:
                done.append(Settled(ids, failure=first_line(exc)))
            else:
                done.append(settled_of(ids, result))
        self._pending = still
        return done

    def _commit(self, events: list[dict[str, Any]]) -> IngestResult:
        return self._ingestor.begin_raw(None, events, door=PREDICTION_DOOR).finish()

    def busy(self) -> bool:
        return bool(self._pending)

    def close(self) -> None:
        pass


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class PredictionLog:
    """Fire-and-forget submission of prediction events, drained at `close`."""

    def __init__(self, *, sink: LogSink, interval_ms: float = LOG_INTERVAL_MS,
                 max_waiting: int = MAX_WAITING) -> None:
        self._sink = sink
        self._interval = interval_ms / 1000
        self._max_waiting = max_waiting
        self._hurry = False
        """Set by `flush`: submit what is queued without waiting out the interval."""
        self._queue: deque[Packed] = deque()
        self._queued = 0
        """Events in `_queue`."""
        self._wake = threading.Condition()
        self._unsettled: set[str] = set()
        """Prediction ids queued or being committed: known before they are in the log."""
        self._thread: threading.Thread | None = None
        self._closing = False
        self.committed = 0
        self.rejected = 0
        self.waits = 0
        """Times a caller waited for the log to catch up."""

    @classmethod
    def of(cls, ingestor: Ingestor, **options: Any) -> PredictionLog:
        """Committed by `ingestor`, in this process."""
        return cls(sink=IngestSink(ingestor=ingestor), **options)

    def record(self, events: Sequence[dict[str, Any]]) -> None:
        """Queue events for the log; returns at once (unless the log is `MAX_WAITING`
        behind, off an event loop)."""
        if not events:
            return
        packed = self._sink.pack(events)  # before the lock: the log's thread goes on
        with self._wake:
            if len(self._unsettled) >= self._max_waiting and not _on_event_loop():
                self.waits += 1
                while len(self._unsettled) >= self._max_waiting and not self._closing:
                    self._wake.wait()
            if self._closing:
                raise RuntimeError("the prediction log is closed")
            self._unsettled.update(packed.ids)
            first = not self._queue
            self._queue.append(packed)
            self._queued += len(packed.ids)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="flywheel-prediction-log")
                self._thread.start()
            if first or self._queued >= _MAX_CHUNK:  # else the thread is gathering
                self._wake.notify()

    def behind(self) -> bool:
        """Is half the most that may wait for the log waiting? (Then an event loop
        leaves its scoring to a thread, which may wait for the log.)"""
        return len(self._unsettled) >= self._max_waiting // 2

    def pending(self, prediction_id: str) -> bool:
        """Is this prediction queued or being committed (not yet readable in the log)?"""
        return prediction_id in self._unsettled

    def _take(self) -> list[Packed] | None:
        with self._wake:
            while not self._queue and not self._closing:
                busy = self._sink.busy()
                self._wake.wait(timeout=0.05 if busy else None)
                if busy and not self._queue:
                    return []  # collect finished commits while idle
            if not self._queue:
                return None
            deadline = time.monotonic() + self._interval
            while self._queued < _MAX_CHUNK and not (self._closing or self._hurry):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(timeout=left)
            self._hurry = False
            chunk: list[Packed] = []
            taken = 0
            while self._queue and (not chunk or taken + len(self._queue[0].ids) <= _MAX_CHUNK):
                packed = self._queue.popleft()
                chunk.append(packed)
                taken += len(packed.ids)
            self._queued -= taken
            return chunk

    def _run(self) -> None:
        while True:
            chunk = self._take()
            if chunk is None:
                break
            if chunk:
                self._sink.submit(chunk)
            self._settle(self._sink.settled(wait=False))
        self._settle(self._sink.settled(wait=True))

    def _settle(self, done: list[Settled]) -> None:
        for settled in done:
            count = len(settled.ids)
            if settled.failure is not None:
                _log.error("%d predictions could not be logged: %s", count, settled.failure)
            self.committed += settled.stored
            self.rejected += settled.rejected
            if settled.rejection is not None:
                _log.error("%d predictions were rejected by the log (kept in bad rows): %s",
                           settled.rejected, settled.rejection)
        if done:
            with self._wake:
                for settled in done:
                    self._unsettled.difference_update(settled.ids)
                self._wake.notify_all()  # callers waiting for room

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is committed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            self._hurry = True
            self._wake.notify_all()
        while True:
            with self._wake:
                if not self._unsettled:
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def close(self) -> None:
        """Commit everything queued, then stop; nothing recorded before is lost."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._sink.close()
