"""Fixtures: a served project with models `purchase` (champion, challenger) and `spend`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.project import Project
from tests.serving.support import classifier, regressor, write_served_project


@pytest.fixture
def served(project_dir: Path) -> Iterator[Project]:
    project = write_served_project(project_dir)
    registry = project.registry
    registry.register("purchase", model=classifier(1.0), feature_service="score",
                      alias="champion")
    registry.register("purchase", model=classifier(0.01, threshold=4), feature_service="score",
                      alias="challenger")
    registry.register("spend", model=regressor(1.0), feature_service="score", alias="champion")
    registry.register("spend", model=regressor(3.0), feature_service="score",
                      alias="challenger")
    try:
        yield project
    finally:
        project.close()
