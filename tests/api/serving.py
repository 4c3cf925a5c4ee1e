"""Helpers for the serving routes' tests: a project with models and deployments, and a
`flywheel serve` process of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from flywheel.project import Project
from flywheel.scaffold import init_project
from tests.serving.support import deploy, register_models, write_served_project

CLI = [sys.executable, "-c", "from flywheel.cli.main import run; run()"]
PREDICTIONS = "dev.flywheel/prediction"


def models_project(root: Path) -> Project:
    """The served project of tests/serving, with `purchase` (champion v1, challenger v2),
    `spend` (champion v1, challenger v2) and a deployment `purchase` of the champion."""
    project = write_served_project(init_project(root))
    register_models(project)
    deploy(project, "purchase", "model: purchase@champion\n")
    return project


def logged_ids(project: Project) -> list[str]:
    """Every prediction id in the log (with repeats, if any were stored twice)."""
    if not project.log_store.handle(project.log.table(PREDICTIONS)).exists():
        return []
    ids: list[str] = project.log.read(PREDICTIONS, columns=["event_id"]).column(
        "event_id").to_pylist()
    return ids


@contextmanager
def serve_process(root: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`flywheel serve --port 0` of `root` (and `args`) in a process: (base URL, process),
    ready to answer. Stopped with SIGTERM at the end unless the block stopped it."""
    process = subprocess.Popen([*CLI, "serve", "--port", "0", "--project", str(root), *args],
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "FLYWHEEL_NO_PROGRESS": "1"})
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line + process.stderr.read()
        url = f"http://127.0.0.1:{found.group(1)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.05)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(90)
        if process.stderr is not None:
            process.stderr.close()


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then the exit: it must be clean (0). Returns what it wrote to stderr."""
    process.send_signal(signal.SIGTERM)
    code = process.wait(90)
    assert process.stderr is not None
    errors = process.stderr.read()
    assert code == 0, errors
    assert "Traceback" not in errors, errors
    return errors
