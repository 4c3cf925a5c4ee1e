"""Every failure is one line on stderr: exit 2 for the user's errors, 1 for the unexpected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flywheel.cli.main import app
from flywheel.project import Project

from .conftest import Invoke, assert_one_line_error, page_view

FLYWHEEL = Path(sys.executable).parent / "flywheel"


def test_usage_errors_are_one_line(cli: Invoke) -> None:
    assert "Missing argument" in assert_one_line_error(cli("ingest"))
    assert "No such option" in assert_one_line_error(cli("log", "stats", "--bogus"))
    assert "No such command" in assert_one_line_error(cli("nosuch"))
    assert "--format" in assert_one_line_error(cli("ingest", "x.ndjson", "--format", "xml"))


def test_outside_a_project_is_one_line(runner: CliRunner, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_error(runner.invoke(app, ["log", "stats"]))
    assert "no flywheel.yaml" in line and "flywheel init" in line


def test_project_from_environment_and_from_a_subfolder(
        runner: CliRunner, project_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from_env = runner.invoke(app, ["apply"], env={"FLYWHEEL_PROJECT": str(project_dir)})
    assert from_env.exit_code == 0, from_env.output
    monkeypatch.chdir(project_dir / "schemas")
    from_parent = runner.invoke(app, ["log", "stats"])
    assert from_parent.exit_code == 0, from_parent.output
    assert "com.example/page_view/v1" in from_parent.stdout


def test_unexpected_errors_exit_1_with_a_hint(runner: CliRunner, project_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Project) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(Project, "apply", boom)
    line = assert_one_line_error(runner.invoke(app, ["-p", str(project_dir), "apply"]), code=1)
    assert "boom" in line and "FLYWHEEL_DEBUG=1" in line and "second line" not in line
    debug = runner.invoke(app, ["-p", str(project_dir), "apply"], env={"FLYWHEEL_DEBUG": "1"})
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


def test_interrupt_is_one_line_and_exit_2(runner: CliRunner, project_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Project) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Project, "apply", interrupted)
    line = assert_one_line_error(runner.invoke(app, ["-p", str(project_dir), "apply"]))
    assert line == "error: interrupted"


def test_interrupted_ingest_says_what_was_committed(
        cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flywheel.ingest.ndjson as ndjson
    from flywheel.ingest.ingestor import Ingestor

    monkeypatch.setattr(ndjson, "CHUNK_LINES", 2)
    calls: list[int] = []
    original = Ingestor.ingest_raw

    def stop_on_the_second_chunk(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ingestor, "ingest_raw", stop_on_the_second_chunk)
    source = tmp_path / "events.ndjson"
    source.write_text("\n".join([page_view("u1"), "{bad", page_view("u3")]) + "\n")
    line = assert_one_line_error(cli("ingest", str(source)))
    assert line == ("error: interrupted; at least the first 2 events were committed "
                    "(1 stored, 1 kept as bad rows)")


def test_permission_denied_is_one_line(cli: Invoke, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "secret.ndjson"
    source.write_text(page_view("u1") + "\n")
    original = Path.open

    def guarded(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "secret.ndjson":  # chmod would not stop root, who runs some CIs
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    line = assert_one_line_error(cli("ingest", str(source)))
    assert "secret.ndjson" in line and "permission denied" in line


def test_the_project_is_closed_after_each_command(cli: Invoke,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    original = Project.close

    def close(self: Project) -> None:
        closed.append(True)
        original(self)

    monkeypatch.setattr(Project, "close", close)
    assert cli("log", "stats").exit_code == 0
    assert_one_line_error(cli("log", "tail", "no/such"))  # fails inside the session
    assert len(closed) == 2


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    commands = [["init"], ["apply"], ["ingest"], ["log", "stats"], ["log", "tail"],
                ["log", "bad-rows"], ["log", "recover"], ["log", "compact"],
                ["token", "create"], ["token", "list"], ["token", "revoke"]]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Example" in result.stdout and f"flywheel {' '.join(command)}" in result.stdout
    top = runner.invoke(app, ["--help"])
    assert all(name in top.stdout for name in ("init", "apply", "ingest", "log", "token"))
    assert runner.invoke(app, ["--version"]).stdout.startswith("flywheel ")


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; from flywheel.cli.main import app; "
            "heavy = ['pyarrow', 'deltalake', 'duckdb', 'polars', 'sqlalchemy', 'fastapi', "
            "'flywheel.project', 'pydantic']; "
            "print(','.join(m for m in heavy if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert found == ""


@pytest.mark.slow
def test_end_to_end_through_the_installed_command(tmp_path: Path) -> None:
    env = {**os.environ, "FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200"}
    env.pop("FLYWHEEL_PROJECT", None)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FLYWHEEL), *args], input=stdin, capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=120, check=False)

    assert run("init", "p").returncode == 0
    assert run("-p", "p", "apply").returncode == 0
    ingested = run("-p", "p", "ingest", "-", stdin=page_view("u1") + "\n{bad\n")
    assert ingested.returncode == 0, ingested.stderr
    assert "accepted" in ingested.stdout and "flywheel log bad-rows" in ingested.stderr
    missing = run("-p", "p", "ingest", "missing.ndjson")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and missing.stderr.startswith("error: ")
    assert "Traceback" not in missing.stdout + missing.stderr
    assert run("-p", "p", "log", "stats").returncode == 0

