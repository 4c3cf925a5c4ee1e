"""Fixtures: a served project with models `purchase` (champion, challenger) and `spend`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.project import Project
from tests.serving.support import register_models, write_served_project


@pytest.fixture
def served(project_dir: Path) -> Iterator[Project]:
    project = write_served_project(project_dir)
    register_models(project)
    try:
        yield project
    finally:
        project.close()
