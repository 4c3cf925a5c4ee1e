"""`flywheel run`: a summary per step, exit 2 with one line on bad input, exit 1 with the
run to resume when a step fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from tests.pipelines.support import calls, write_project


@pytest.fixture
def flywheel(project_dir: Path) -> CliRunner:
    write_project(project_dir)
    return CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200",
                          "FLYWHEEL_PROJECT": str(project_dir), "FLYWHEEL_DEBUG": None})


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


def rows(result: Result) -> dict[str, list[str]]:
    """The summary table: step -> its cells."""
    found = {}
    for line in result.stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in {"training_set", "raw", "doubled", "squared", "total"}:
            found[cells[0]] = cells[1:]
    return found


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_a_run_prints_a_summary_and_a_second_run_is_cached(flywheel: CliRunner,
                                                           project_dir: Path) -> None:
    first = invoke(flywheel, "run", str(project_dir / "numbers.yaml"))
    assert first.exit_code == 0, first.output
    table = rows(first)
    assert list(table) == ["raw", "doubled", "squared", "total"]
    assert table["total"][:2] == ["ran", "miss"]
    assert table["total"][3] == "pickle, 5 B"
    assert re.search(r"run [0-9a-f]{32} finished: 4 steps \(4 ran\) in", first.stderr)
    again = invoke(flywheel, "run", str(project_dir / "numbers.yaml"), "--param", "factor=3")
    assert again.exit_code == 0, again.output
    assert {k: v[:2] for k, v in rows(again).items()} == {
        "raw": ["cached", "hit"], "doubled": ["ran", "miss"], "squared": ["cached", "hit"],
        "total": ["ran", "miss"]}
    assert calls(project_dir) == ["raw", "doubled", "squared", "total", "doubled", "total"]
    forced = invoke(flywheel, "run", str(project_dir / "numbers.yaml"), "--no-cache",
                    "--executor", "process")
    assert forced.exit_code == 0, forced.output
    assert {v[0] for v in rows(forced).values()} == {"ran"}


def test_a_relative_spec_path_is_from_the_working_folder(
        flywheel: CliRunner, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project_dir / "pipelines")
    result = invoke(flywheel, "run", "../numbers.yaml")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    (("--param", "facto=5"), "unknown param(s) facto: no step of numbers takes them"),
    (("--param", "factor"), "--param 'factor' is not KEY=VALUE"),
    (("--param", "factor=[1,"), "is not valid JSON"),
    (("--param", "factor=two"), "param factor of step doubled is two (str), not int"),
    (("--executor", "ray"), "no executor named 'ray'"),
])
def test_bad_input_is_one_line_and_exit_2(flywheel: CliRunner, project_dir: Path,
                                          args: tuple[str, ...], message: str) -> None:
    result = invoke(flywheel, "run", str(project_dir / "numbers.yaml"), *args)
    assert message in one_line_error(result, 2)
    assert calls(project_dir) == []


@pytest.mark.parametrize(("spec", "message"), [
    ("pipeline: [", "not valid YAML"),
    ("pipeline: pipelines/numbers.py:pipeline\nparams: {rows: 3}\nexecuter: process\n",
     "unknown key executer"),
    ("pipeline: pipelines/nothing.py:pipeline\n", "no file"),
    ("pipeline: pipelines/numbers.py:nothing\n", "nothing is nothing, not a Pipeline"),
])
def test_a_bad_spec_is_one_line_and_exit_2(flywheel: CliRunner, project_dir: Path,
                                           spec: str, message: str) -> None:
    (project_dir / "bad.yaml").write_text(spec)
    assert message in one_line_error(invoke(flywheel, "run", str(project_dir / "bad.yaml")), 2)


def test_a_missing_step_input_is_exit_2(flywheel: CliRunner, project_dir: Path) -> None:
    path = project_dir / "pipelines" / "numbers.py"
    path.write_text(path.read_text().replace("def squared(raw: list)",
                                             "def squared(raw: list, power: int)"))
    result = invoke(flywheel, "run", str(project_dir / "numbers.yaml"))
    assert "step squared: input 'power' is not a step" in one_line_error(result, 2)


def test_missing_arguments_are_exit_2(flywheel: CliRunner, project_dir: Path) -> None:
    assert "give a run spec, or --resume" in one_line_error(invoke(flywheel, "run"), 2)
    assert "no run spec at" in one_line_error(invoke(flywheel, "run", "nope.yaml"), 2)
    assert "no pipeline run 'abc'" in one_line_error(
        invoke(flywheel, "run", "--resume", "abc"), 2)


def test_a_failed_step_is_exit_1_with_the_run_to_resume(flywheel: CliRunner,
                                                        project_dir: Path) -> None:
    path = project_dir / "pipelines" / "numbers.py"
    original = path.read_text()
    path.write_text(original.replace('    called("squared")\n',
                                     '    called("squared")\n    raise ValueError("bad\\nrow")\n'))
    failed = invoke(flywheel, "run", str(project_dir / "numbers.yaml"))
    line = one_line_error(failed, 1)
    match = re.fullmatch(r"error: step squared failed: ValueError: bad row — fix it, then "
                         r"`flywheel run --resume ([0-9a-f]{32})`", line)
    assert match, line
    table = rows(failed)
    assert table["raw"][0] == "ran" and table["squared"][0] == "failed"
    assert table["total"][0] == "not run"
    path.write_text(original)
    calls(project_dir)
    refused = invoke(flywheel, "run", "--resume", match.group(1), "--param", "factor=3")
    assert "param(s) factor of step doubled changed" in one_line_error(refused, 2)
    resumed = invoke(flywheel, "run", "--resume", match.group(1))
    assert resumed.exit_code == 0, resumed.output
    assert {k: v[0] for k, v in rows(resumed).items()} == {
        "raw": "reused", "doubled": "reused", "squared": "ran", "total": "ran"}
    assert calls(project_dir) == ["squared", "total"]


def test_help_has_examples(flywheel: CliRunner) -> None:
    result = invoke(flywheel, "run", "--help")
    assert result.exit_code == 0
    assert "flywheel run pipelines/train.yaml --param" in result.stdout
    assert "--resume" in result.stdout and "--no-cache" in result.stdout
