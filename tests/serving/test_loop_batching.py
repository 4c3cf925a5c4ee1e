"""Scoring on the event loop: a model that has proven fast is scored on the loop, the
requests of one turn together; one batch over the budget sends it back to its thread."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from flywheel.project import Project
from flywheel.serving.batcher import _PROOF
from tests.serving.support import DelayedModel, deploy, pages_of, users


def _delayed(served: Project, tmp_path: Path, batching: str) -> tuple[Path, object]:
    delay = tmp_path / "delay"
    delay.write_text("0")
    served.registry.register("delayed", model=DelayedModel(str(delay)),
                             inputs=["pages", "seconds"], feature_service="score",
                             alias="champion")
    deploy(served, "delayed", f"model: delayed@champion\nbatching: {batching}\n")
    return delay, served.deployments.get("delayed")


async def _one_at_a_time(deployment: object, count: int) -> None:
    for i in range(count):
        batch = await deployment.predict_async(  # type: ignore[attr-defined]
            entities={"user_id": users(1, i % 30)})
        assert batch.rows[0].outputs["value"] == pages_of(i % 30) * 2.0


async def _until_on_loop(deployment: object, most: int) -> int:
    """Requests sent one at a time until the model is scored on the loop: how many (a
    batch over the budget on a loaded box starts the streak again, so not exactly the
    streak's length)."""
    batcher = deployment._batcher  # type: ignore[attr-defined]
    for sent in range(1, most + 1):
        await _one_at_a_time(deployment, 1)
        if batcher.on_loop:
            return sent
    raise AssertionError(f"not on the loop after {most} requests")


def test_a_fast_model_moves_to_the_loop_and_back_after_one_slow_batch(
        served: Project, tmp_path: Path) -> None:
    delay, deployment = _delayed(served, tmp_path, "{loop_budget_ms: 50}")
    batcher = deployment._batcher  # type: ignore[attr-defined]

    async def run() -> None:
        await _one_at_a_time(deployment, _PROOF - 1)
        assert not batcher.on_loop  # not proven yet: scored on the thread
        await _until_on_loop(deployment, 10 * _PROOF)

        # On the loop, the requests of one turn are one batch.
        before = batcher.batches
        answers = await asyncio.gather(*(
            deployment.predict_async(entities={"user_id": users(1, i)}) for i in range(12)))
        assert batcher.batches == before + 1
        assert [a.rows[0].outputs["value"] for a in answers] == [
            pages_of(i) * 2.0 for i in range(12)]

        # The model turns slow: one batch holds the loop up, the next ones do not.
        delay.write_text("0.15")
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        await asyncio.gather(*(deployment.predict_async(entities={"user_id": users(1, i)})
                               for i in range(4)))
        assert not batcher.on_loop  # 150 ms, over twice its 50 ms budget: back on its thread
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        slow = await asyncio.gather(*(
            deployment.predict_async(entities={"user_id": users(1, i)}) for i in range(6)))
        ticking.cancel()
        assert [a.rows[0].outputs["value"] for a in slow] == [pages_of(i) * 2.0
                                                              for i in range(6)]
        assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.1
        assert not batcher.on_loop

        # Fast again: it must prove itself over a streak four times longer.
        delay.write_text("0")
        await _one_at_a_time(deployment, 4 * _PROOF - 1)
        assert not batcher.on_loop
        await _until_on_loop(deployment, 20 * _PROOF)

    asyncio.run(run())


@pytest.mark.parametrize("batching", ["{loop_budget_ms: 0}", "{max_wait_ms: 2}"])
def test_no_model_is_scored_on_the_loop_when_the_deployment_says_so(
        served: Project, tmp_path: Path, batching: str) -> None:
    _, deployment = _delayed(served, tmp_path, batching)
    asyncio.run(_one_at_a_time(deployment, _PROOF + 20))
    assert not deployment._batcher.on_loop  # type: ignore[attr-defined]


def test_a_slow_model_is_never_scored_on_the_loop(served: Project, tmp_path: Path) -> None:
    delay, deployment = _delayed(served, tmp_path, "{loop_budget_ms: 1}")
    delay.write_text("0.002")  # 2 ms a batch, over a 1 ms budget
    asyncio.run(_one_at_a_time(deployment, _PROOF + 20))
    assert not deployment._batcher.on_loop  # type: ignore[attr-defined]
