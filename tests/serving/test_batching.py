"""Micro-batching: requests that arrive while the model is busy are scored together, a lone
request does not wait, and the event loop never scores."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from flywheel.project import Project
from flywheel.serving import MissingEntitiesError
from tests.serving.support import SlowModel, deploy, pages_of, users


def test_requests_queued_behind_a_busy_model_are_scored_together(served: Project) -> None:
    served.registry.register("slow", model=SlowModel(0.05), inputs=["pages", "seconds"],
                             feature_service="score", alias="champion")
    deploy(served, "slow", "model: slow@champion\nbatching: {max_batch_size: 8, "
           "max_wait_ms: 5}\n")
    deployment = served.deployments.get("slow")
    batcher = deployment._batcher

    async def run() -> tuple[list[float], float]:
        ticks: list[float] = []

        async def ticker() -> None:  # the loop stays free while the model sleeps
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        batches = await asyncio.gather(*(
            deployment.predict_async(entities={"user_id": users(1, i)}) for i in range(20)))
        ticking.cancel()
        values = [b.rows[0].outputs["value"] for b in batches]
        gaps = max(b - a for a, b in itertools.pairwise(ticks))
        return values, gaps

    values, longest_gap = asyncio.run(run())
    assert values == [pages_of(i) * 2.0 for i in range(20)]
    assert batcher.items == 20 and batcher.batches <= 5  # 1, then full batches of 8
    assert longest_gap < 0.04  # each batch takes 50 ms off the loop


def test_a_lone_request_is_scored_at_once(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\nbatching: {max_wait_ms: 200}\n")
    deployment = served.deployments.get("purchase")
    deployment.predict(entities={"user_id": ["u1"]})  # warm: models and readers loaded

    async def one() -> float:
        started = time.monotonic()
        await deployment.predict_async(entities={"user_id": ["u1"]})
        return time.monotonic() - started

    took = min(asyncio.run(one()) for _ in range(5))
    assert took < 0.1  # far below the 200 ms a batch may wait for company
    assert deployment._batcher.batches == 5 and deployment._batcher.items == 5


def test_one_bad_request_in_a_batch_fails_alone(served: Project) -> None:
    served.registry.register("slow", model=SlowModel(0.03), inputs=["pages", "seconds"],
                             feature_service="score", alias="champion")
    deploy(served, "slow", "model: slow@champion\n")
    deployment = served.deployments.get("slow")

    async def run() -> list[object]:
        asked = [users(1, i) if i != 7 else ["ghost"] for i in range(16)]
        return list(await asyncio.gather(
            *(deployment.predict_async(entities={"user_id": a}) for a in asked),
            return_exceptions=True))

    answers = asyncio.run(run())
    assert deployment._batcher.batches < 16  # some were scored together
    assert isinstance(answers[7], MissingEntitiesError) and answers[7].missing == ["ghost"]
    assert [a.rows[0].outputs["value"] for i, a in enumerate(answers)  # type: ignore[union-attr]
            if i != 7] == [pages_of(i) * 2.0 for i in range(16) if i != 7]


def test_a_caller_that_goes_away_leaves_the_batcher_working(served: Project) -> None:
    served.registry.register("slow", model=SlowModel(0.1), inputs=["pages", "seconds"],
                             feature_service="score", alias="champion")
    deploy(served, "slow", "model: slow@champion\n")
    deployment = served.deployments.get("slow")

    async def run() -> float:
        gone = asyncio.create_task(deployment.predict_async(entities={"user_id": users(1)}))
        await asyncio.sleep(0.03)  # now being scored on the batcher's thread
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        answer = await deployment.predict_async(entities={"user_id": users(1, 3)})
        return float(answer.rows[0].outputs["value"])

    assert asyncio.run(run()) == pages_of(3) * 2.0
    assert deployment._batcher.items == 2


def test_instances_batched_together_keep_their_own_columns(served: Project) -> None:
    served.registry.register("slow", model=SlowModel(0.03), inputs=["pages", "seconds"],
                             feature_service="score", alias="champion")
    deploy(served, "slow", "model: slow@champion\n")
    deployment = served.deployments.get("slow")

    def row(i: int) -> dict[str, object]:
        if i == 5:
            return {"pages": i}  # no `seconds`: refused, not scored with another's
        if i == 9:
            return {"pages": "many", "seconds": 1.0}
        return {"pages": i, "seconds": 1.0}

    async def run() -> list[object]:
        return list(await asyncio.gather(
            *(deployment.predict_async(instances=[row(i)]) for i in range(16)),
            return_exceptions=True))

    answers = asyncio.run(run())
    assert deployment._batcher.batches < 16  # some were scored together
    assert "no feature 'seconds'" in str(answers[5])
    assert "feature 'pages' is not a number" in str(answers[9])
    assert [a.rows[0].outputs["value"] for i, a in enumerate(answers)  # type: ignore[union-attr]
            if i not in (5, 9)] == [i * 2.0 for i in range(16) if i not in (5, 9)]
