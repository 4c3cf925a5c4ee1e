"""Helpers for HTTP tests: an in-process client over ASGI, and a real uvicorn server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import uvicorn
import yaml
from fastapi import FastAPI

from flywheel.api.server import bind_socket
from flywheel.project import Project


class AsgiClient:
    """A synchronous face over `httpx.AsyncClient` + `ASGITransport` (Starlette's
    TestClient warns with httpx). App exceptions are raised, never turned into a 500."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def __enter__(self) -> AsgiClient:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self._app),
                                         base_url="http://flywheel.test")
        return self

    def __exit__(self, *exc: object) -> None:
        self._portal.call(self._client.aclose)
        self._portal_cm.__exit__(None, None, None)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            return await self._client.request(method, path, **kwargs)

        return self._portal.call(send)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)


def make_project(root: Path, **settings: Any) -> Project:
    """An initialised, applied project; `settings` are merged into flywheel.yaml sections."""
    Project.init(root).close()
    if settings:
        path = root / "flywheel.yaml"
        config = yaml.safe_load(path.read_text())
        for section, values in settings.items():
            config.setdefault(section, {}).update(values)
        path.write_text(yaml.safe_dump(config))
    project = Project.open(root)
    project.apply()
    return project


@contextmanager
def opened_project(root: Path, **settings: Any) -> Iterator[Project]:
    """`make_project`, closed at the end of the block."""
    project = make_project(root, **settings)
    try:
        yield project
    finally:
        project.close()


@contextmanager
def client_with_tokens(project: Project, tokens: Mapping[str, tuple[str, ...]]
                       ) -> Iterator[AsgiClient]:
    """A client of an app that requires tokens, with `tokens` (value -> scopes) created."""
    from flywheel._core.hashing import sha256_text
    from flywheel._core.metadata.tokens import TokenRecord
    from flywheel.api.app import create_app

    for i, (token, scopes) in enumerate(tokens.items()):
        project.metadata.add_token(TokenRecord(f"t{i}", sha256_text(token), scopes))
    with AsgiClient(create_app(project, require_tokens=True)) as client:
        yield client


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def count_log_rows(project: Project) -> int:
    total = 0
    for ref in project.log.tables():
        if project.log_store.handle(ref).exists():
            rows: int = project.log.read(str(ref), columns=["event_id"]).num_rows
            total += rows
    return total
