"""The prediction log: every prediction row becomes an event in the log, off the response
path.

`record` only appends to a queue. One thread gathers what is queued for up to one log
interval (`LOG_INTERVAL_MS`, or until `_MAX_CHUNK` events wait), prepares it through the
ingest path (door `predict`) and submits it to the log's group-commit writer without
waiting; the futures are kept and collected as they resolve. Gathering is what keeps a
quiet server cheap: without it every prediction would be a commit of its own. `close`
drains the queue and waits for every commit, so a clean shutdown loses nothing; a crash
loses what was not committed yet: at most the last log interval plus the commit in
progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from flywheel._core.text import first_line
from flywheel.ingest.ingestor import Ingestor, PendingIngest
from flywheel.serving.events import PREDICTION_DOOR

__all__ = ["LOG_INTERVAL_MS", "PredictionLog"]

_log = logging.getLogger("flywheel.serving")
_MAX_CHUNK = 5_000
LOG_INTERVAL_MS = 100.0
"""How long predictions gather before they are committed together."""


class PredictionLog:
    """Fire-and-forget submission of prediction events, drained at `close`."""

    def __init__(self, *, ingestor: Ingestor, interval_ms: float = LOG_INTERVAL_MS) -> None:
        self._ingestor = ingestor
        self._interval = interval_ms / 1000
        self._hurry = False
        """Set by `flush`: submit what is queued without waiting out the interval."""
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Condition()
        self._pending: list[tuple[PendingIngest, list[str]]] = []
        self._unsettled: set[str] = set()
        """Prediction ids queued or being committed: known before they are in the log."""
        self._thread: threading.Thread | None = None
        self._closing = False
        self.committed = 0
        self.rejected = 0

    def record(self, events: Sequence[dict[str, Any]]) -> None:
        """Queue events for the log; returns at once."""
        if not events:
            return
        with self._wake:
            if self._closing:
                raise RuntimeError("the prediction log is closed")
            self._unsettled.update(e["event_id"] for e in events)
            first = not self._queue
            self._queue.extend(events)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="flywheel-prediction-log")
                self._thread.start()
            if first or len(self._queue) >= _MAX_CHUNK:  # else the thread is gathering
                self._wake.notify()

    def pending(self, prediction_id: str) -> bool:
        """Is this prediction queued or being committed (not yet readable in the log)?"""
        return prediction_id in self._unsettled

    def _take(self) -> list[dict[str, Any]] | None:
        with self._wake:
            while not self._queue and not self._closing:
                self._wake.wait(timeout=0.05 if self._pending else None)
                if self._pending and not self._queue:
                    return []  # collect finished commits while idle
            if not self._queue:
                return None
            deadline = time.monotonic() + self._interval
            while len(self._queue) < _MAX_CHUNK and not (self._closing or self._hurry):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(timeout=left)
            self._hurry = False
            count = min(len(self._queue), _MAX_CHUNK)
            return [self._queue.popleft() for _ in range(count)]

    def _run(self) -> None:
        while True:
            chunk = self._take()
            if chunk is None:
                break
            if chunk:
                self._submit(chunk)
            self._collect(wait=False)
        self._collect(wait=True)

    def _submit(self, chunk: list[dict[str, Any]]) -> None:
        ids = [e["event_id"] for e in chunk]
        try:
            pending = self._ingestor.begin_raw(None, chunk, door=PREDICTION_DOOR)
        except Exception as exc:
            _log.error("%d predictions could not be logged: %s", len(chunk), first_line(exc))
            self._settle(ids)
            return
        self._pending.append((pending, ids))

    def _collect(self, *, wait: bool) -> None:
        still = []
        for pending, ids in self._pending:
            if not wait and not pending.future.done():
                still.append((pending, ids))
                continue
            try:
                result = pending.finish()
            except Exception as exc:
                _log.error("%d predictions could not be logged: %s", len(ids), first_line(exc))
            else:
                self.committed += result.accepted + result.duplicates
                self.rejected += result.rejected
                for error in result.errors[:1]:
                    _log.error("%d predictions were rejected by the log (kept in bad rows): "
                              "%s", result.rejected, error.message)
            self._settle(ids)
        self._pending = still

    def _settle(self, ids: list[str]) -> None:
        with self._wake:
            self._unsettled.difference_update(ids)

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
