from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flywheel.cli.main import app
from flywheel.project import Project

from .conftest import PAGE_VIEW, Invoke, assert_one_line_error


def test_init_creates_a_project_and_says_what_next(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "shop"
    result = runner.invoke(app, ["init", str(target), "--name", "Shop"])
    assert result.exit_code == 0, result.output
    assert (target / "flywheel.yaml").is_file()
    assert "name: Shop" in (target / "flywheel.yaml").read_text()
    assert (target / "schemas/com.example/page_view/jsonschema/1-0-0").is_file()
    assert (target / "README.md").is_file()
    assert "flywheel.yaml" in result.stdout and "README.md" in result.stdout
    assert "flywheel apply" in result.stdout and "flywheel ingest -" in result.stdout


def test_init_twice_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "p")]).exit_code == 0
    line = assert_one_line_error(runner.invoke(app, ["init", str(tmp_path / "p")]))
    assert "already holds a Flywheel project" in line


def test_apply_registers_the_example_schema(cli: Invoke, project_dir: Path) -> None:
    # `cli` applied once already: a second apply reports it unchanged.
    again = cli("apply")
    assert again.exit_code == 0, again.output
    assert PAGE_VIEW in again.stdout and "unchanged" in again.stdout
    assert "com.example/page_view/v1" in again.stdout
    with Project.open(project_dir) as project:
        records = {r.key: r for r in project.metadata.list_schemas()}
    document = json.loads(records[PAGE_VIEW].body)
    assert sorted(document["required"]) == ["url", "user_id"]
    assert document["additionalProperties"] is False


def test_first_apply_says_registered(runner: CliRunner, project_dir: Path) -> None:
    result = runner.invoke(app, ["-p", str(project_dir), "apply"])
    assert result.exit_code == 0, result.output
    assert "registered" in result.stdout and "unchanged" not in result.stdout


def test_apply_rejects_a_breaking_change_in_one_line(cli: Invoke, project_dir: Path) -> None:
    path = project_dir / "schemas/com.example/page_view/jsonschema/1-1-0"
    document = json.loads(path.with_name("1-0-0").read_text())
    document["self"]["version"] = "1-1-0"
    del document["properties"]["referrer"]
    path.write_text(json.dumps(document))
    line = assert_one_line_error(cli("apply"))
    assert "removes property 'referrer'" in line
