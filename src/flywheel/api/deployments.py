"""The routes' way to a deployment: an open one is taken as it is, on the event loop; the
first request of a deployment looks it up in a worker thread, where its models load.

An earlier version kept each deployment for a second and then looked it up again in a
thread: under load, every request of the moment the second ran out took that hop at
once, and the server stalled for all of them, about once a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio.to_thread

if TYPE_CHECKING:
    from flywheel.serving import Deployment, Deployments

__all__ = ["DeploymentFinder"]


class DeploymentFinder:
    """`await finder.get(name)`: the deployment, or UnknownDeploymentError (404)."""

    def __init__(self, deployments: Callable[[], Deployments]) -> None:
        self._deployments = deployments

    async def get(self, name: str) -> Deployment:
        deployments = self._deployments()
        found = deployments.opened(name)
        if found is not None:
            return found
        return await anyio.to_thread.run_sync(deployments.get, name)

    async def names(self) -> list[str]:
        return await anyio.to_thread.run_sync(self._deployments().names)
