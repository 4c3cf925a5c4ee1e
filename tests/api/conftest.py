from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.api.app import create_app
from flywheel.project import Project
from tests.api.serving import models_project
from tests.api.support import AsgiClient, live_server, make_project, opened_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with opened_project(tmp_path / "p") as project:
        yield project


@pytest.fixture
def client(project: Project) -> Iterator[AsgiClient]:
    with AsgiClient(create_app(project)) as client:
        yield client


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Project, str]]:
    """A project behind a real uvicorn server on a free loopback port: (project, url)."""
    project = make_project(tmp_path / "sp")
    try:
        with live_server(create_app(project)) as url:
            yield project, url
    finally:
        project.close()


@pytest.fixture
def models(tmp_path: Path) -> Iterator[Project]:
    """The served project of `models_project`: models registered, `purchase` deployed."""
    project = models_project(tmp_path / "p")
    try:
        yield project
    finally:
        project.close()


@pytest.fixture
def api(models: Project) -> Iterator[AsgiClient]:
    with AsgiClient(create_app(models)) as client:
        yield client
