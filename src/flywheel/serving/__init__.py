"""The HTTP server: one FastAPI app with a router per role (collector, Snowplow, ...).

`create_app` is imported on first use, so `import flywheel.serving` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from flywheel.serving.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from flywheel.serving.app import create_app

        return create_app
    raise AttributeError(f"module 'flywheel.serving' has no attribute {name!r}")
