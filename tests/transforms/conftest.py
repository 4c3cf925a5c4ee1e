"""A project with the example page_view schema applied, open for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.project import Project


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    (project_dir / "transforms").mkdir(exist_ok=True)
    with Project.open(project_dir) as project:
        project.apply()
        yield project
