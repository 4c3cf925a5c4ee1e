"""Bad project files and options: one line and exit 2, never an unexpected error; and the
inputs that were once accepted silently (a typo in a quality gate) are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Invoke, assert_one_line_error, page_view

BINARY = b"\xff\xfe\x00\x81binary"


@pytest.mark.parametrize("name", ["flywheel.yaml", "transforms/t.sql", "features.yaml",
                                  "schemas/com.example/page_view/jsonschema/1-0-1"])
def test_a_file_that_is_not_utf8_is_one_line(cli: Invoke, project_dir: Path,
                                             name: str) -> None:
    path = project_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BINARY)
    line = assert_one_line_error(cli("apply"))
    assert f"{path} is not UTF-8 text (byte 0xff at offset 0)" in line


def _nested_schema(levels: int) -> str:
    """A schema document `levels` object schemas deep, as text (json.dumps would recurse)."""
    head = ('{"$schema": "http://json-schema.org/draft-07/schema#", "self": {"vendor": '
            '"com.example", "name": "deep", "format": "jsonschema", "version": "1-0-0"}, '
            '"type": "object", "properties": {"a": ')
    inner = '{"type": "object", "properties": {"a": ' * levels + "{}" + "}}" * levels
    return head + inner + "}}"


@pytest.mark.parametrize("levels", [40, 75, 200, 2_000])
def test_a_deeply_nested_schema_is_one_line(cli: Invoke, project_dir: Path,
                                            levels: int) -> None:
    path = project_dir / "schemas/com.example/deep/jsonschema/1-0-0"
    path.parent.mkdir(parents=True)
    path.write_text(_nested_schema(levels))
    line = assert_one_line_error(cli("apply"))
    assert "levels deep; at most 64" in line or "nested too deeply" in line
    assert "indentation" not in line


def test_a_schema_nested_within_the_limit_is_applied(cli: Invoke, project_dir: Path) -> None:
    path = project_dir / "schemas/com.example/deep/jsonschema/1-0-0"
    path.parent.mkdir(parents=True)
    path.write_text(_nested_schema(20))
    result = cli("apply")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("header", "says"), [
    ("-- expect: range(quantity, abc, 5)", "'abc' is not a number"),
    ("-- expect: range(quantity)", "at least one bound"),
    ("-- expect: range(quantity, , )", "at least one bound"),
    ("-- expect: range(quantity, nan, 5)", "cannot be NaN"),
    ("-- expect: row_count_change(abc, x)", "'abc' is not a number"),
    ("-- expect: accepted_values(plan)", "at least one value"),
    ("-- expects: not_null(quantity)", "unknown header key 'expects' (did you mean 'expect'?)"),
])
def test_a_bad_transform_header_is_refused_at_apply(cli: Invoke, project_dir: Path,
                                                    header: str, says: str) -> None:
    (project_dir / "transforms").mkdir(exist_ok=True)
    (project_dir / "transforms/t.sql").write_text(
        f"-- inputs: com.example/page_view\n{header}\nselect 1 as quantity from page_view\n")
    assert says in assert_one_line_error(cli("apply"))


def test_an_unknown_storage_scheme_is_refused_before_any_data(cli: Invoke,
                                                              project_dir: Path) -> None:
    config = project_dir / "flywheel.yaml"
    config.write_text(config.read_text().replace("storage: data", "storage: ftp://host/x"))
    line = assert_one_line_error(cli("log", "stats"))
    assert "storage: unknown URL scheme 'ftp://'" in line and "Value error" not in line


def test_a_fix_function_that_raises_is_one_line_and_recovers_nothing(
        cli: Invoke, project_dir: Path, tmp_path: Path) -> None:
    assert cli("ingest", "-", input=page_view("u1", url=None) + "\n").exit_code == 0
    fix = tmp_path / "fix.py"
    fix.write_text("def repair(event):\n    raise ValueError('boom')\n")
    line = assert_one_line_error(cli("log", "recover", "--fix", f"{fix}:repair"))
    assert "repair raised ValueError: boom on bad row" in line
    assert "nothing was recovered" in line


@pytest.mark.parametrize("command", [["log", "bad-rows"], ["log", "recover"]])
def test_an_unknown_reason_is_one_line(cli: Invoke, command: list[str]) -> None:
    line = assert_one_line_error(cli(*command, "--reason", "schema_violations"))
    assert "not a bad-row reason" in line and "schema_violation" in line


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64),
       name=st.sampled_from(["flywheel.yaml", "transforms/t.sql", "features.yaml",
                             "schemas/com.example/page_view/jsonschema/1-0-1"]))
def test_random_bytes_in_any_project_file_never_crash(cli: Invoke, project_dir: Path,
                                                      data: bytes, name: str) -> None:
    path = project_dir / name
    original = path.read_bytes() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    try:
        result = cli("apply")
        assert result.exit_code in (0, 2), result.output
        assert "unexpected" not in result.output
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)


def test_a_syntax_error_in_a_pipeline_module_is_one_line(cli: Invoke, project_dir: Path) -> None:
    (project_dir / "pipelines").mkdir()
    (project_dir / "pipelines/train.py").write_text("import os\n\ndef broken(:\n")
    (project_dir / "train.yaml").write_text("pipeline: pipelines/train.py:pipeline\n")
    line = assert_one_line_error(cli("run", str(project_dir / "train.yaml")))
    assert "pipelines/train.py:3: invalid syntax" in line


@pytest.mark.parametrize("name", ["train.yaml", "flywheel.yaml", "features.yaml"])
def test_an_impossible_date_in_yaml_is_one_line(cli: Invoke, project_dir: Path,
                                                name: str) -> None:
    (project_dir / "pipelines").mkdir()
    (project_dir / "pipelines/train.py").write_text("pipeline = None\n")
    text = ("pipeline: pipelines/train.py:pipeline\ntraining_data:\n  feature_service: s\n"
            "  entities: t\n  start: 2026-13-45\n")
    path = project_dir / name
    path.write_text(text if name == "train.yaml" else "when: 2026-13-45\n")
    command = ["run", str(path)] if name == "train.yaml" else ["apply"]
    line = assert_one_line_error(cli(*command))
    assert f"{path}: a value cannot be read: month must be in 1..12" in line


@pytest.mark.parametrize("table", ["com.example/page_view/v9", "com.acme/nothing/v1",
                                   "iglu:com.example/page_view/jsonschema/2-0-0"])
def test_tail_of_a_table_the_project_does_not_have_is_one_line(cli: Invoke,
                                                               table: str) -> None:
    line = assert_one_line_error(cli("log", "tail", table))
    assert "no log table" in line and "com.example/page_view/v1" in line
