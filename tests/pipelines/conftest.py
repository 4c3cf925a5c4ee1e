"""A project, opened for the test, with the numbers pipeline written into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.project import Project
from tests.pipelines.support import write_project


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_project(project_dir)
    with Project.open(project_dir) as project:
        yield project
