"""What may wait for the log is bounded: a server that predicts faster than its log
commits waits for it (off the event loop), so what a crash can lose does not grow."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from flywheel._core.errors import InputError, LogUnavailableError
from flywheel.ingest.result import IngestResult
from flywheel.project import Project
from flywheel.serving import Deployments, predlog
from flywheel.serving.batcher import _PROOF
from flywheel.serving.predlog import (
    IngestSink,
    Packed,
    PredictionLog,
    Settled,
    committed_with_retries,
)
from tests.serving.support import (
    DelayedModel,
    FlakyIngestor,
    deploy,
    logged,
    pages_of,
    predictions,
    users,
)


class GatedSink:
    """The project's own in-process sink, holding each chunk until the gate opens: a log
    that has fallen behind."""

    def __init__(self, inner: IngestSink) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.held: list[list[Packed]] = []

    def pack(self, events: Sequence[dict[str, Any]]) -> Packed:
        return self.inner.pack(events)

    def submit(self, chunk: list[Packed]) -> None:
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


def test_a_full_log_holds_back_loop_traffic_without_holding_the_loop(
        served: Project, tmp_path: Path) -> None:
    delay = tmp_path / "delay"
    delay.write_text("0")
    served.registry.register("delayed", model=DelayedModel(str(delay)),
                             inputs=["pages", "seconds"], feature_service="score",
                             alias="champion")
    deploy(served, "delayed", "model: delayed@champion\nbatching: {loop_budget_ms: 100}\n")
    sink = GatedSink(IngestSink(ingestor=served.ingestor))
    deployments = Deployments(folder=served.root / "deployments", registry=served.registry,
                              features=served.features, ingestor=served.ingestor,
                              log_store=served.log_store, log_sink=sink)
    deployment = deployments.get("delayed")
    log = deployments.prediction_log
    many = {"user_id": [f"u{i % 40}" for i in range(10_000)]}

    async def run() -> int:
        sent = 0
        while not deployment._batcher.on_loop:
            await deployment.predict_async(entities={"user_id": users(1, sent % 30)})
            sent += 1
            assert sent < 20 * _PROOF, "never scored on the loop"
        await asyncio.to_thread(deployment.predict, entities=many)
        await asyncio.to_thread(deployment.predict, entities=many)
        assert log.behind() and log.waits == 0  # 20,100 waiting: the log is full

        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        held = asyncio.create_task(deployment.predict_async(entities={"user_id": ["u3"]}))
        deadline = time.monotonic() + 30
        while log.waits == 0:  # it waits for the log, on the deployment's thread
            assert time.monotonic() < deadline, "the prediction never waited"
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        assert not held.done()
        waited = [t for t in ticks if t > started]
        assert len(waited) > 5  # the loop ran on while the prediction waited
        assert max(b - a for a, b in itertools.pairwise(waited)) < 0.1
        sink.gate.set()
        answer = await held
        ticking.cancel()
        assert answer.rows[0].outputs["value"] == pages_of(3) * 2.0
        return sent

    sent = asyncio.run(run())
    deployments.close()
    assert log.committed == sent + 20_001


def test_a_commit_that_fails_on_the_logs_side_is_tried_again(served: Project) -> None:
    flaky = FlakyIngestor(served.ingestor, failures=2)
    log = PredictionLog(sink=IngestSink(ingestor=flaky), interval_ms=10)
    events = predictions(50)
    log.record(events)
    log.close()
    assert flaky.attempts == 3 and (log.committed, log.rejected) == (50, 0)
    stored = Counter(r["event_id"] for r in logged(served, "dev.flywheel/prediction"))
    assert stored == Counter(e["event_id"] for e in events)


def test_retries_stop_at_a_bad_chunk_and_after_the_last_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predlog, "RETRY_DELAYS", (0.0, 0.0))
    calls: list[str] = []

    def failing(error: Exception) -> Callable[[], IngestResult]:
        def attempt() -> IngestResult:
            calls.append(type(error).__name__)
            raise error
        return attempt

    with pytest.raises(LogUnavailableError):
        committed_with_retries(failing(LogUnavailableError("away")),
                               failing(LogUnavailableError("still away")))
    assert len(calls) == 3  # the first attempt and one after each wait
    calls.clear()
    with pytest.raises(InputError):  # the chunk itself is wrong: no second attempt
        committed_with_retries(failing(InputError("bad")), failing(InputError("bad")))
    assert calls == ["InputError"]
