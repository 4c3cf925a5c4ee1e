"""What may wait for the log is bounded: a server that predicts faster than its log
commits waits for it (off the event loop), so what a crash can lose does not grow."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from typing import Any

from flywheel.project import Project
from flywheel.serving.events import PREDICTION_SCHEMA
from flywheel.serving.predlog import IngestSink, PredictionLog, Settled
from tests.serving.support import logged


class GatedSink:
    """The project's own in-process sink, holding each chunk until the gate opens: a log
    that has fallen behind."""

    def __init__(self, inner: IngestSink) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.held: list[list[dict[str, Any]]] = []

    def submit(self, chunk: list[dict[str, Any]]) -> None:
        self.held.append(chunk)

    def _release(self) -> None:
        if self.gate.is_set():
            for chunk in self.held:
                self.inner.submit(chunk)
            self.held.clear()

    def settled(self, *, wait: bool) -> list[Settled]:
        if wait:
            self.gate.wait()
        self._release()
        return self.inner.settled(wait=wait)

    def busy(self) -> bool:
        return bool(self.held) or self.inner.busy()

    def close(self) -> None:
        self.inner.close()


def predictions(count: int) -> list[dict[str, Any]]:
    found = []
    for _ in range(count):
        pid = str(uuid.uuid4())
        found.append({"schema": PREDICTION_SCHEMA, "event_id": pid,
                      "event_time": "2026-05-01T10:00:00.000000+00:00",
                      "data": {"prediction_id": pid, "deployment": "purchase",
                               "member": "purchase", "model": "purchase", "model_version": 1,
                               "features": {"pages": 3}, "outputs": {"probability": 0.5},
                               "latency_ms": 1.0, "shadow": False, "defaulted": False}})
    return found


def until(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_recording_waits_for_a_log_that_is_behind_and_loses_nothing(served: Project) -> None:
    sink = GatedSink(IngestSink(ingestor=served.ingestor))
    log = PredictionLog(sink=sink, interval_ms=10, max_waiting=100)
    first, second = predictions(100), predictions(30)
    log.record(first[:40])
    assert not log.behind()
    log.record(first[40:60])
    assert log.behind()  # half the most: an event loop now leaves scoring to a thread
    log.record(first[60:])  # 100 waiting: the most that may
    late = threading.Thread(target=log.record, args=(second,))
    late.start()
    until(lambda: log.waits == 1)
    assert late.is_alive()  # it waits: the gate is shut, nothing was committed

    # On an event loop, recording never waits (the loop's work goes to a thread instead).
    async def on_the_loop() -> None:
        log.record(predictions(5))

    asyncio.run(on_the_loop())
    assert log.waits == 1

    sink.gate.set()
    late.join(timeout=60)
    assert not late.is_alive()
    log.close()
    stored = Counter(r["event_id"] for r in logged(served, "dev.flywheel/prediction"))
    assert {e["event_id"] for e in first + second} <= set(stored)
    assert len(stored) == 135 and set(stored.values()) == {1}
    assert log.committed == 135 and not log.behind()
