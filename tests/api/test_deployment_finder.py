"""The routes find an open deployment on the event loop, without a worker thread; only the
first request of a deployment (its models load) or of an unknown name takes one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flywheel.api import deployments as finder_module
from flywheel.api.deployments import DeploymentFinder
from flywheel.project import Project
from flywheel.serving.errors import UnknownDeploymentError


def test_an_open_deployment_is_found_without_a_thread(models: Project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    finder = DeploymentFinder(lambda: models.deployments)
    hops: list[Any] = []
    real = finder_module.anyio.to_thread.run_sync

    async def counted(function: Any, *args: Any) -> Any:
        hops.append(args)
        return await real(function, *args)

    monkeypatch.setattr(finder_module.anyio.to_thread, "run_sync", counted)

    async def scenario() -> None:
        first = await finder.get("purchase")  # loads its models, in a thread
        assert hops == [("purchase",)]
        for _ in range(100):
            assert await finder.get("purchase") is first
        assert hops == [("purchase",)]
        with pytest.raises(UnknownDeploymentError):
            await finder.get("nope")
        assert hops == [("purchase",), ("nope",)]

    asyncio.run(scenario())
