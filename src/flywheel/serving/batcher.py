"""Adaptive micro-batching: requests that arrive while the model is busy are scored together.

One worker thread per deployment takes whatever has queued. A request that finds the
worker idle is taken at once, alone: at low load nothing waits. Under load the queue
fills while a batch is scored, and the next batch takes it all (up to `max_batch_size`);
when it found more than one request waiting it may also wait up to `max_wait_ms` for the
batch to fill, since more are then likely on their way. Scoring thus runs off the event
loop, and a slow model holds up only its own deployment.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class MicroBatcher(Generic[Item, Answer]):
    def __init__(self, *, process: Callable[[list[Item]], Sequence[Answer | BaseException]],
                 max_batch_size: int, max_wait_ms: float, name: str) -> None:
        self._process = process
        self._max = max_batch_size
        self._wait = max_wait_ms / 1000
        self._name = name
        self._queue: deque[tuple[Item, Future[Answer]]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.items = 0

    def submit(self, item: Item) -> Future[Answer]:
        future: Future[Answer] = Future()
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

    def _take(self) -> list[tuple[Item, Future[Answer]]] | None:
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

    def _drain(self, batch: list[tuple[Item, Future[Answer]]],
               ) -> list[tuple[Item, Future[Answer]]]:
        while self._queue and len(batch) < self._max:
            batch.append(self._queue.popleft())
        return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self.batches += 1
            self.items += len(batch)
            try:
                answers = self._process([item for item, _ in batch])
            except BaseException as exc:  # reported to every caller, the worker goes on
                answers = [exc] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def close(self) -> None:
        """Score what is queued, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
