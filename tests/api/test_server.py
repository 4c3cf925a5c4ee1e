"""The bind policy: loopback needs no token; any other address needs tokens to exist."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flywheel._core.hashing import sha256_text
from flywheel._core.metadata.tokens import TokenRecord
from flywheel.api.server import ServeError, is_loopback, needs_tokens
from flywheel.project import Project

CLI = [sys.executable, "-c", "from flywheel.cli.main import run; run()"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost",
                                  "LocalHost "])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "example.com",
                                  "localhost.evil.com", ""])
def test_other_addresses(host: str) -> None:
    assert not is_loopback(host)


def test_tokens_needed_beyond_loopback(project: Project) -> None:
    assert needs_tokens(project, "127.0.0.1") is False
    with pytest.raises(ServeError, match=r"refusing to listen on 0\.0\.0\.0") as caught:
        needs_tokens(project, "0.0.0.0")
    assert "flywheel token create" in caught.value.one_line()
    project.metadata.add_token(TokenRecord("collector", sha256_text("s"), ("ingest",)))
    assert needs_tokens(project, "0.0.0.0") is True


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_cli_refuses_an_open_bind_without_tokens(project: Project) -> None:
    result = _run_cli("serve", "--host", "0.0.0.0", "--port", "0", "--project",
                      str(project.root))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: refusing to listen on 0.0.0.0")
    assert "Traceback" not in result.stderr


def test_cli_reports_a_busy_port_in_one_line(project: Project) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run_cli("serve", "--port", str(port), "--project", str(project.root))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use — choose another "
        "--port or --host"]


def test_cli_outside_a_project(tmp_path: Path) -> None:
    result = _run_cli("serve", "--project", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: no flywheel.yaml")
    assert len(result.stderr.strip().splitlines()) == 1
