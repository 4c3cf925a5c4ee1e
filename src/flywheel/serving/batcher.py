"""Adaptive micro-batching: requests that arrive while the model is busy are scored together.

One worker thread per deployment takes whatever has queued. A request that finds the
worker idle is taken at once, alone: at low load nothing waits. Under load the queue
fills while a batch is scored, and the next batch takes it all (up to `max_batch_size`);
when it found more than one request waiting it may also wait up to `max_wait_ms` for the
batch to fill, since more are then likely on their way. Scoring thus runs off the event
loop, and a slow model holds up only its own deployment.

A model that has proven fast is scored on the event loop instead (`score`): the requests
that arrive in one turn of the loop are scored together at the end of it. Handing each
request to a thread and its answer back costs more than scoring it when a batch takes a
millisecond, and two threads that share one interpreter take turns with each other's
latency. "Proven" means its last `_PROOF` batches each kept within `loop_budget_ms` of
CPU time (and twice that of wall time, which also counts waiting on a store, and
being preempted on a busy box); one batch on the loop over the budget sends the model
back to its thread, and it must then prove itself over a streak four times longer. The
loop is thus held up by at most one batch over the budget, never twice by the same
habit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

_log = logging.getLogger("flywheel.serving")
_PROOF = 100
"""Batches within the budget, in a row, before a model is first scored on the loop."""
_MAX_PROOF = 1_000_000

_Item = TypeVar("_Item")
_Answer = TypeVar("_Answer")


class MicroBatcher(Generic[_Item, _Answer]):
    def __init__(self, *, process: Callable[[list[_Item]], Sequence[_Answer | BaseException]],
                 max_batch_size: int, max_wait_ms: float, name: str,
                 loop_budget_ms: float = 0.0,
                 loop_allowed: Callable[[], bool] = lambda: True) -> None:
        self._process = process
        self._max = max_batch_size
        self._wait = max_wait_ms / 1000
        self._name = name
        # A batch that may wait for company cannot wait on the loop.
        self._budget = loop_budget_ms / 1000 if max_wait_ms == 0 else 0.0
        self._loop_allowed = loop_allowed
        self._streak = 0
        """Batches in a row that finished within the budget."""
        self._proof = _PROOF
        self.on_loop = False
        """Is the model scored on the event loop now?"""
        self._gathered: list[tuple[_Item, asyncio.Future[_Answer]]] = []
        self._queue: deque[tuple[_Item, Future[_Answer]]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.items = 0

    async def score(self, item: _Item) -> _Answer:
        """`item`'s answer, from an event loop: gathered with the others of this turn and
        scored on the loop if the model has proven fast, else by the worker thread."""
        if not (self.on_loop and self._loop_allowed()):
            return await asyncio.wrap_future(self.submit(item))
        if self._closed:
            raise RuntimeError(f"deployment {self._name} is closed")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[_Answer] = loop.create_future()
        self._gathered.append((item, answer))
        if len(self._gathered) == 1:  # the first of this turn: score them all after it
            loop.call_soon(self._score_gathered)
        return await answer

    def _score_gathered(self) -> None:
        batch, self._gathered = self._gathered[:self._max], self._gathered[self._max:]
        if self._gathered:
            asyncio.get_running_loop().call_soon(self._score_gathered)
        cpu, wall = self._timed_batch(batch)
        if self.on_loop and not self._within(cpu, wall):
            self.on_loop = False
            self._proof = min(self._proof * 4, _MAX_PROOF)
            _log.warning("deployment %s: a batch took %.1f ms (%.1f ms of CPU) on the event "
                         "loop, over its budget of %g ms; it is scored on its own thread "
                         "again", self._name, wall * 1000, cpu * 1000, self._budget * 1000)

    def _within(self, cpu: float, wall: float) -> bool:
        return cpu <= self._budget and wall <= 2 * self._budget

    def _timed_batch(self, batch: Sequence[tuple[_Item, Future[_Answer] |
                                                  asyncio.Future[_Answer]]],
                     ) -> tuple[float, float]:
        """Score `batch`, answer each caller; the CPU time and the wall time it took."""
        self.batches += 1
        self.items += len(batch)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            answers = self._process([item for item, _ in batch])
        except BaseException as exc:  # reported to every caller, the worker goes on
            answers = [exc] * len(batch)
        cpu, wall = time.thread_time() - cpu_started, time.perf_counter() - started
        for (_, future), answer in zip(batch, answers, strict=True):
            try:
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
            except (InvalidStateError, asyncio.InvalidStateError):
                pass  # its caller went away: the future was cancelled

        self._count(cpu, wall)
        return cpu, wall

    def _count(self, cpu: float, wall: float) -> None:
        if self._budget <= 0:
            return
        self._streak = self._streak + 1 if self._within(cpu, wall) else 0
        if not self.on_loop and self._streak >= self._proof:
            self._streak = 0
            self.on_loop = True
            _log.info("deployment %s is scored on the event loop: its last %d batches each "
                      "took under %g ms", self._name, self._proof, self._budget * 1000)

    def submit(self, item: _Item) -> Future[_Answer]:
        future: Future[_Answer] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError(f"deployment {self._name} is closed")
            self._queue.append((item, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"flywheel-serve-{self._name}")
                self._thread.start()
            self._ready.notify()
        return future

    def _take(self) -> list[tuple[_Item, Future[_Answer]]] | None:
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            batch = self._drain([])
            if 1 < len(batch) < self._max and self._wait > 0:
                deadline = time.monotonic() + self._wait
                while len(batch) < self._max and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if not self._queue:
                        self._ready.wait(left)
                    batch = self._drain(batch)
            return batch

    def _drain(self, batch: list[tuple[_Item, Future[_Answer]]],
               ) -> list[tuple[_Item, Future[_Answer]]]:
        while self._queue and len(batch) < self._max:
            batch.append(self._queue.popleft())
        return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._timed_batch(batch)

    def close(self) -> None:
        """Score what is queued, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
