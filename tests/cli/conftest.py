"""Fixtures for CLI tests: a runner with a fixed environment and an applied project."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from flywheel.cli.main import app

PAGE_VIEW = "iglu:com.example/page_view/jsonschema/1-0-0"
ORDER = "iglu:com.acme/order/jsonschema/1-0-0"

Invoke = Callable[..., Result]

ORDER_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "quantity": {"type": "integer"},
        "price": {"type": "number"},
        "gift": {"type": "boolean"},
    },
    "required": ["order_id", "quantity"],
    "additionalProperties": False,
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200",
                          "FLYWHEEL_PROJECT": None, "FLYWHEEL_DEBUG": None})


@pytest.fixture
def cli(runner: CliRunner, project_dir: Path) -> Invoke:
    """`flywheel --project <an applied project> ...`."""

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(app, ["--project", str(project_dir), *args], input=input)

    applied = invoke("apply")
    assert applied.exit_code == 0, applied.output
    return invoke


def page_view(user_id: str, url: str | None = "https://example.com/", **data: Any) -> str:
    body: dict[str, Any] = {"user_id": user_id, **data}
    if url is not None:
        body["url"] = url
    return json.dumps({"schema": PAGE_VIEW, "data": body})


def counts(result: Result) -> dict[str, int]:
    """The numbers of the ingest summary table."""
    found = re.findall(r"^\s*(received|accepted|rejected|duplicates)\s+([\d,]+)\s*$",
                       result.stdout, re.MULTILINE)
    return {name: int(value.replace(",", "")) for name, value in found}


def assert_one_line_error(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def add_schema(project_dir: Path, uri: str, document: dict[str, Any]) -> None:
    vendor, name, fmt, version = uri.removeprefix("iglu:").split("/")
    folder = project_dir / "schemas" / vendor / name / fmt
    folder.mkdir(parents=True, exist_ok=True)
    (folder / version).write_text(json.dumps(document))


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Terminal(io.StringIO):
    """A stderr stand-in that says it is a terminal, so progress is drawn into it."""

    def isatty(self) -> bool:
        return True
