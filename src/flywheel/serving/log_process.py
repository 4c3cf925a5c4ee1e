"""`ProcessSink`: prediction chunks committed by a process of its own.

A server's interpreter has one GIL: preparing predictions for the log (validation, Arrow)
and the log's commits there compete with the event loop and the scorer, and widen the
tail of every answer. So `flywheel serve` sends each gathered chunk over a pipe to a
committer process (started beside each server process), which prepares and commits it
through an ingestor of the project's own, together with the chunks that follow it closely
(up to half a second of them), and answers with each chunk's outcome.

Each recorded batch is encoded where it was recorded, while it is fresh in the caches
(`ProcessSink.pack`: MessagePack), so the log's thread only joins bytes and no stall of
the event loop comes with a chunk. What is sent and not yet answered is kept (bytes, not
objects the server's garbage collector would walk), and sent again to a new committer if the
process dies: a chunk committed just before a crash comes back as duplicates (the log
knows each `prediction_id`), so a prediction is stored once either way. The committer
ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group): it stops when the
server closes its pipe, after committing what it has, and also when the server dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from flywheel._core.text import first_line
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.result import IngestResult
from flywheel.serving.events import PREDICTION_DOOR
from flywheel.serving.predlog import Packed, Settled, committed_with_retries, settled_of

__all__ = ["IngestorOpener", "ProcessSink"]

_log = logging.getLogger("flywheel.serving")
_MAX_RESTARTS = 3
"""Deaths in a row, with no chunk answered between them, before the unanswered chunks
are given up as not logged."""
_STOP_SECONDS = 120.0
_GROUP_EVENTS = 10_000
_GROUP_SECONDS = 0.5
"""How long a committer gathers chunks for one commit, at most: each commit has a cost
of its own (the log's id index, a file, the table's commit, compaction after many), so
a busy server's predictions are committed a few chunks at a time."""
_GROUP_GAP_SECONDS = 0.15
"""A pause longer than this between chunks ends the group at once (a log interval is
100 ms): a quiet server's predictions, or a flush, are not held back."""
_NICENESS = 10
"""The committer's CPU priority below the server's: on a small box it takes the cores
the server leaves idle, and never preempts an answer (CFS still gives it a share)."""


IngestorOpener = Callable[[], AbstractContextManager[Ingestor]]
"""Opens, in the committer, the ingestor chunks are committed by (closing it drains its
writer); sent to the committer pickled."""


def _commit_forever(opener: IngestorOpener, conn: Connection) -> None:
    """The committer's main: commit what is received, in groups, and answer each chunk's
    outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # the answers wait on the server, not on this
        os.nice(_NICENESS)
    with opener() as ingestor:
        stopping = False
        while not stopping:
            group, stopping = _gather(conn)
            if group and not _commit_group(ingestor, group, conn):
                break


def _gather(conn: Connection) -> tuple[list[tuple[int, list[dict[str, Any]]]], bool]:
    """The chunks of one commit: the next one, and those that follow it closely (a chunk
    comes every log interval while the server is busy), up to `_GROUP_EVENTS` events or
    `_GROUP_SECONDS`. Whether to stop after it: the server closed the pipe, or is gone."""
    group: list[tuple[int, list[dict[str, Any]]]] = []
    events = 0
    deadline = None
    while events < _GROUP_EVENTS:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not conn.poll(min(left, _GROUP_GAP_SECONDS)):
                break
        try:
            message = conn.recv()
        except EOFError:  # the server is gone: what came is committed, then stop
            return group, True
        if message is None:
            return group, True
        seq, blob = message
        chunk = _decode_chunk(blob)
        group.append((seq, chunk))
        events += len(chunk)
        if deadline is None:
            deadline = time.monotonic() + _GROUP_SECONDS
    return group, False


def _commit_group(ingestor: Ingestor, group: list[tuple[int, list[dict[str, Any]]]],
                  conn: Connection) -> bool:
    """Commit the group's chunks together and answer for each; False if the server is
    gone. The group's outcome is counted on its first chunk (the others are answered as
    settled), so the totals the server keeps stay exact."""
    events = [e for _, chunk in group for e in chunk]

    def commit() -> IngestResult:
        return ingestor.begin_raw(None, events, door=PREDICTION_DOOR).finish()

    try:
        result = committed_with_retries(commit)
    except Exception as exc:
        answers = [(seq, Settled([], failure=first_line(exc))) for seq, _ in group]
    else:  # the ids are the server's
        answers = [(seq, settled_of([], result) if i == 0 else Settled([]))
                   for i, (seq, _) in enumerate(group)]
    try:
        for answer in answers:
            conn.send(answer)
    except OSError:
        return False
    return True


_MSGPACK, _PICKLE = b"m", b"p"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def _encode_batch(events: Sequence[dict[str, Any]]) -> bytes:
    """A recorded batch as bytes, encoded where it was recorded (`ProcessSink.pack`). In
    MessagePack: about four times faster than pickle on prediction events. A value
    MessagePack cannot carry exactly (a NumPy scalar, an integer past 64 bits) sends the
    batch pickled."""
    blob = bytearray(_MSGPACK)
    try:
        _encoder.encode_into(events, blob, 1)
    except (TypeError, OverflowError):
        return _PICKLE + pickle.dumps(list(events), protocol=pickle.HIGHEST_PROTOCOL)
    return bytes(blob)


def _decode_batch(blob: bytes) -> list[dict[str, Any]]:
    events: list[dict[str, Any]]
    if blob[:1] == _MSGPACK:
        events = _decoder.decode(memoryview(blob)[1:])
    else:
        events = pickle.loads(memoryview(blob)[1:])
    return events


def _decode_chunk(blob: bytes) -> list[dict[str, Any]]:
    """A chunk's events: its batches (a pickled list of `_encode_batch` bytes) in turn."""
    batches: list[bytes] = pickle.loads(blob)
    return [e for batch in batches for e in _decode_batch(batch)]


class ProcessSink:
    """Chunks committed by a committer process, through the ingestor `opener` opens."""

    def __init__(self, *, opener: IngestorOpener) -> None:
        self._opener = opener
        self._context = multiprocessing.get_context("spawn")  # no inherited threads
        self._next = 0
        self._unanswered: dict[int, tuple[list[str], bytes]] = {}
        """seq -> (the chunk's ids, the chunk pickled)."""
        self._process: Any = None
        self._conn: Connection | None = None
        self._deaths = 0
        self._start()  # now: the committer imports and opens the project while we serve

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def _start(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_commit_forever, args=(self._opener, theirs),
                                        name="flywheel-log-committer")
        process.start()
        theirs.close()  # only the committer holds its end: its death is an EOF here
        self._process, self._conn = process, ours
        for seq in sorted(self._unanswered):
            if not self._send(seq, self._unanswered[seq][1]):
                return

    def _send(self, seq: int, blob: bytes) -> bool:
        assert self._conn is not None
        try:
            self._conn.send((seq, blob))
        except OSError:  # the committer died: noticed, and the chunk resent, in `settled`
            return False
        return True

    def pack(self, events: Sequence[dict[str, Any]]) -> Packed:
        return Packed([e["event_id"] for e in events], _encode_batch(events))

    def submit(self, chunk: list[Packed]) -> None:
        seq = self._next
        self._next += 1
        # A list of bytes pickles as copies of them: no event is walked on this thread.
        blob = pickle.dumps([packed.payload for packed in chunk],
                            protocol=pickle.HIGHEST_PROTOCOL)
        self._unanswered[seq] = ([i for packed in chunk for i in packed.ids], blob)
        if self._conn is not None:
            self._send(seq, blob)

    def settled(self, *, wait: bool) -> list[Settled]:
        done: list[Settled] = []
        while True:
            if self._conn is None:
                done.extend(self._restart())
                if self._conn is None:
                    return done
            try:
                while self._unanswered and self._conn.poll(0.1 if wait else 0):
                    done.append(self._answer(self._conn.recv()))
            except (EOFError, OSError):
                self._died()
                continue
            if not wait or not self._unanswered:
                return done

    def _answer(self, message: tuple[int, Settled]) -> Settled:
        seq, outcome = message
        ids, _ = self._unanswered.pop(seq)
        self._deaths = 0
        return dataclasses.replace(outcome, ids=ids)

    def _died(self) -> None:
        code = None
        if self._process is not None:
            self._process.join(5)
            code = self._process.exitcode
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
        self._deaths += 1
        _log.error("the prediction log's committer process exited (code %s) with %d chunks "
                   "unanswered; starting another", code, len(self._unanswered))

    def _restart(self) -> list[Settled]:
        if self._deaths > _MAX_RESTARTS:
            lost = [Settled(ids, failure="the committer process keeps dying (see the log "
                                         "above)")
                    for ids, _ in self._unanswered.values()]
            self._unanswered.clear()
            self._deaths = 0
            return lost
        time.sleep(0.2 * self._deaths)  # no busy loop if it cannot start
        self._start()
        return []

    def busy(self) -> bool:
        return bool(self._unanswered)

    def close(self) -> None:
        """Stop the committer (after `settled(wait=True)`: nothing is unanswered)."""
        if self._conn is not None:
            with suppress(OSError):
                self._conn.send(None)
        if self._process is not None:
            self._process.join(_STOP_SECONDS)
            if self._process.is_alive():
                _log.error("the prediction log's committer did not stop; killing it")
                self._process.kill()
                self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
