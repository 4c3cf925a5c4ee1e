"""The floor of the HTTP stack: an ASGI app under the same uvicorn as `flywheel serve`
(httptools, uvloop) that reads the request body and answers fixed bytes, doing no work.

No server that does any work per request can be faster than this on the same machine;
the serving benchmark runs it beside the real servers so that its latency targets can be
read against what the box allows.

    FLOOR_ANSWER='{"ok": 1}' python -m uvicorn _http_floor:app --port 8000
"""

from __future__ import annotations

import os
from typing import Any

_ANSWER = os.environ.get("FLOOR_ANSWER", "{}").encode()
_HEADERS = [(b"content-type", b"application/json"),
            (b"content-length", str(len(_ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start or stop
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
