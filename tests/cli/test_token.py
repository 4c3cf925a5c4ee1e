from __future__ import annotations

import hashlib
import re
from pathlib import Path

from flywheel.project import Project

from .conftest import Invoke, assert_one_line_error


def test_create_prints_the_token_once_and_stores_its_hash(cli: Invoke, project_dir: Path) -> None:
    result = cli("token", "create", "collector", "--scope", "ingest", "--scope", "read")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # token_urlsafe(32), alone on stdout
    assert "not the token" in result.stderr
    with Project.open(project_dir) as project:
        record = project.metadata.find_token(hashlib.sha256(token.encode()).hexdigest())
        stored = project.metadata.list_tokens()
    assert record is not None and record.name == "collector"
    assert record.scopes == ("ingest", "read")
    assert all(token not in (t.sha256, t.name) for t in stored)

    listed = cli("token", "list")
    assert "collector" in listed.stdout and "ingest, read" in listed.stdout
    assert token not in listed.output


def test_tokens_differ_and_names_are_unique(cli: Invoke) -> None:
    first = cli("token", "create", "a", "--scope", "admin").stdout.strip()
    second = cli("token", "create", "b", "--scope", "admin").stdout.strip()
    assert first != second
    assert "already exists" in assert_one_line_error(cli("token", "create", "a", "--scope", "read"))


def test_revoke(cli: Invoke) -> None:
    cli("token", "create", "ci", "--scope", "predict")
    revoked = cli("token", "revoke", "ci")
    assert revoked.exit_code == 0, revoked.output
    assert "ci" not in cli("token", "list").stdout
    assert "no token named 'ci'" in assert_one_line_error(cli("token", "revoke", "ci"))


def test_bad_scope_and_bad_name_are_one_line(cli: Invoke) -> None:
    assert "--scope" in assert_one_line_error(cli("token", "create", "x", "--scope", "root"))
    assert "--scope" in assert_one_line_error(cli("token", "create", "x"))
    assert "not allowed" in assert_one_line_error(
        cli("token", "create", "has space", "--scope", "read"))
