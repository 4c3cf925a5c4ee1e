"""Project-wide checks that run with the test suite: lint, types, layers, import time, API."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
        return found
    return str(path)


def test_ruff_is_clean() -> None:
    result = _run(_tool("ruff"), "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run(_tool("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_of_the_design_hold() -> None:
    result = _run(_tool("lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_is_fast_and_light() -> None:
    code = ("import sys, time; t = time.perf_counter(); import flywheel; "
            "print(time.perf_counter() - t); "
            "print(','.join(m for m in ('pyarrow', 'deltalake', 'duckdb', 'polars', 'fastapi', "
            "'sqlalchemy', 'redis') if m in sys.modules))")
    best = min(float(_run(sys.executable, "-c", code).stdout.split()[0]) for _ in range(3))
    heavy = _run(sys.executable, "-c", code).stdout.split("\n")[1]
    assert best < 0.5
    assert heavy == ""


def test_public_api_resolves_and_is_sorted() -> None:
    import flywheel

    assert flywheel.__all__ == sorted(set(flywheel.__all__))
    for name in flywheel.__all__:
        assert getattr(flywheel, name) is not None
    with pytest.raises(AttributeError):
        _ = flywheel.NotAName  # type: ignore[attr-defined]
    for method in ("open", "init", "apply", "ingest", "log", "close"):
        assert hasattr(flywheel.Project, method)


def test_cli_help_is_fast() -> None:
    start = time.perf_counter()
    result = _run(sys.executable, "-m", "flywheel.cli.main", "--help")
    assert result.returncode == 0, result.stderr
    assert "ingest" in result.stdout
    assert time.perf_counter() - start < 3


STORES_BELOW_THE_SDK = {"metadata", "log_store", "ingestor", "writer"}


def test_the_cli_goes_through_the_sdk() -> None:
    """No command reaches past the SDK into a project's raw stores."""
    import ast

    reached = []
    for path in sorted((ROOT / "src" / "flywheel" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in STORES_BELOW_THE_SDK
                    and isinstance(node.value, ast.Name) and node.value.id == "project"):
                reached.append(f"{path.name}:{node.lineno} project.{node.attr}")
    assert reached == []


def test_the_cli_offers_every_token_scope() -> None:
    from flywheel.cli.token import Scope
    from flywheel.ingest.access import SCOPES

    assert sorted(s.value for s in Scope) == sorted(SCOPES)
