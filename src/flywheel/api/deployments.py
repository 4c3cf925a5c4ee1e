"""The routes' way to a deployment: looked up in a worker thread (the first lookup loads
its models), then kept for a second, so that a request on a warm deployment costs no
thread hop and an edited or removed deployment is seen within that second."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio.to_thread

if TYPE_CHECKING:
    from flywheel.serving import Deployment, Deployments

__all__ = ["DeploymentFinder"]


class DeploymentFinder:
    """`await finder.get(name)`: the deployment, or UnknownDeploymentError (404)."""

    def __init__(self, deployments: Callable[[], Deployments], *, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._deployments = deployments
        self._ttl = ttl
        self._clock = clock
        self._kept: dict[str, tuple[float, Deployment]] = {}

    async def get(self, name: str) -> Deployment:
        kept = self._kept.get(name)
        now = self._clock()
        if kept is not None and kept[0] > now:
            return kept[1]
        deployment = await anyio.to_thread.run_sync(self._deployments().get, name)
        if len(self._kept) > 1024:  # names are the project's, but be bounded anyway
            self._kept.clear()
        self._kept[name] = (now + self._ttl, deployment)
        return deployment

    async def names(self) -> list[str]:
        return await anyio.to_thread.run_sync(self._deployments().names)
