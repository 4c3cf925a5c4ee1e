"""The project facade: opening, configuration, and the same loop on PostgreSQL metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel._core.errors import ConfigError, ProjectNotFoundError
from flywheel.project import Project, find_project_dir
from flywheel.serving.events import FEEDBACK_SCHEMA, PREDICTION_SCHEMA
from tests.helpers import PAGE_VIEW, page_view


def test_open_finds_the_project_from_a_subfolder(project_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (project_dir / "notebooks").mkdir()
    monkeypatch.chdir(project_dir / "notebooks")
    assert find_project_dir() == project_dir


def test_no_project_says_how_to_make_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFoundError, match="flywheel init"):
        Project.open()


def test_a_bad_setting_is_one_clear_line(project_dir: Path) -> None:
    (project_dir / "flywheel.yaml").write_text("server:\n  port: 70000\n")
    with pytest.raises(ConfigError, match=r"server\.port"):
        Project.open(project_dir)


def test_an_unknown_backend_scheme_names_the_known_ones(project_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_METADATA_URL", "mongodb://localhost/x")
    with pytest.raises(ConfigError, match=r"no metadata backend for URL scheme 'mongodb://'; "
                       r"use .*sqlite://"):
        Project.open(project_dir)  # at open, not when the store is first used


def test_the_loop_runs_on_postgresql_metadata(project_dir: Path, postgres_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_METADATA_URL", postgres_url)
    with Project.open(project_dir) as project:
        assert project.metadata.url.startswith("postgresql")
        project.apply()
        result = project.ingest([page_view(1), {"schema": PAGE_VIEW, "data": {"userId": "u"}}])
        assert (result.accepted, result.rejected) == (1, 1)

        def fix(event: dict[str, object]) -> dict[str, object]:
            return {**event, "data": {"user_id": "u", "url": "/"}}

        assert project.log.recover(fix).recovered == 1
        assert project.log.recover(fix).recovered == 0
    with Project.open(project_dir) as again:  # the schema registry came from PostgreSQL
        assert sorted(str(k) for k in again.schemas.current.keys) == sorted(
            [PAGE_VIEW, PREDICTION_SCHEMA, FEEDBACK_SCHEMA])  # the project's and the shipped
