"""The HTTP edge: one FastAPI app (`create_app`), token auth, a router per role (events,
Snowplow, features), and the server runner (`flywheel.api.server`). Routers read the
request, authorise it, call the layers below and shape the answer; nothing below this
package imports an HTTP framework.

`create_app` is imported on first use, so `import flywheel.api` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from flywheel.api.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from flywheel.api.app import create_app

        return create_app
    raise AttributeError(f"module 'flywheel.api' has no attribute {name!r}")
