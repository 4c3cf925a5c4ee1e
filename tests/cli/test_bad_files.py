"""Bad project files and options: one line and exit 2, never an unexpected error; and the
inputs that were once accepted silently (a typo in a quality gate) are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from tests.helpers import VISIT, write_visits_project

from .conftest import Invoke, assert_one_line_error, counts, page_view

BINARY = b"\xff\xfe\x00\x81binary"


@pytest.mark.parametrize("name", ["flywheel.yaml", "transforms/t.sql", "features.yaml",
                                  "schemas/com.example/page_view/jsonschema/1-0-1",
                                  "definitions.py", "transforms/t.py"])
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


@pytest.mark.parametrize("levels", [40, 60, 75, 100, 150, 200, 2_000])
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
    ("-- expect: range(quantity, 1e999, )", "'1e999' is not a finite number"),
    ("-- expect: sql(select from this where)", "its SQL does not parse"),
    ("-- expect: accepted_values(plan)", "at least one value"),
    ("-- expects: not_null(quantity)", "unknown header key 'expects' (did you mean 'expect'?)"),
])
def test_a_bad_transform_header_is_refused_at_apply(cli: Invoke, project_dir: Path,
                                                    header: str, says: str) -> None:
    (project_dir / "transforms").mkdir(exist_ok=True)
    (project_dir / "transforms/t.sql").write_text(
        f"-- inputs: com.example/page_view\n{header}\nselect 1 as quantity from page_view\n")
    assert says in assert_one_line_error(cli("apply"))


@pytest.mark.parametrize("command", [["apply"], ["log", "stats"], ["features", "list"]])
def test_an_unknown_storage_scheme_is_refused_before_any_data(cli: Invoke, project_dir: Path,
                                                              command: list[str]) -> None:
    config = project_dir / "flywheel.yaml"
    config.write_text(config.read_text().replace("storage: data", "storage: ftp://host/x"))
    line = assert_one_line_error(cli(*command))
    assert "storage: unknown URL scheme 'ftp://'" in line and "Value error" not in line


@pytest.mark.parametrize(("old", "new", "says"), [
    ("online: sqlite:///", "online: ftp://", "online: no online backend for URL scheme 'ftp://'"),
    ("artifacts: artifacts", "artifacts: ftp://host/a",
     "artifacts: no artifacts backend for URL scheme 'ftp://'"),
    ("metadata: sqlite:///", "metadata: sqlite://", "is not a SQLite URL: write sqlite:///"),
    ("metadata: sqlite:///.flywheel/metadata.db", "metadata: postgresql://u@host:abc/db",
     "is not a valid URL (Port could not be cast to integer value as 'abc')"),
    ("storage: data", 'storage: "da\\0ta"', "storage: holds a control character"),
])
def test_a_bad_backend_url_is_refused_when_the_project_opens(cli: Invoke, project_dir: Path,
                                                             old: str, new: str,
                                                             says: str) -> None:
    config = project_dir / "flywheel.yaml"
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new))
    line = assert_one_line_error(cli("log", "stats"))  # a command that opens no backend
    assert f"{config}: " in line and says in line, line


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


@pytest.mark.slow
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
        if result.exit_code == 2:  # a parser may say "unexpected"; the CLI's own never
            assert not assert_one_line_error(result).startswith("error: unexpected ")
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


BOMB = "".join(f"{n}: &{n} [{', '.join([f'*{p}' if p else '0'] * 10)}]\n"
               for p, n in zip(["", *"abcdefg"], "abcdefgh", strict=True))
"""Eight lines of YAML anchors that stand for 10^8 values."""


@pytest.mark.parametrize(("name", "text", "says"), [
    ("flywheel.yaml", BOMB + "alerts: *h\n", "holds more than 1,000,000 values once its "
     "aliases (*name) are expanded"),
    ("features.yaml", BOMB + "entities: *h\n", "holds more than 1,000,000 values"),
    ("train.yaml", BOMB + "pipeline: pipelines/train.py:pipeline\nparams: {big: *h}\n",
     "holds more than 1,000,000 values"),
    ("flywheel.yaml", "name: " + "[" * 150 + "]" * 150 + "\n", "nested more than 100 levels"),
    ("train.yaml", "params: " + "[" * 5_000 + "]" * 5_000 + "\n", "nested more than 100 levels"),
    ("features.yaml", "a: &r [*r]\n", "or an alias holds itself"),
    ("flywheel.yaml", "name: a\x13b\n", "is not valid YAML: unacceptable character #x0013"),
    ("flywheel.yaml", "name: !!python/object/apply:os.system [true]\n", "is not valid YAML"),
])
def test_a_yaml_file_that_would_exhaust_the_machine_is_one_line(
        cli: Invoke, project_dir: Path, name: str, text: str, says: str) -> None:
    (project_dir / "pipelines").mkdir()
    (project_dir / "pipelines/train.py").write_text("pipeline = None\n")
    path = project_dir / name
    path.write_text(text)
    command = ["run", str(path)] if name == "train.yaml" else ["apply"]
    line = assert_one_line_error(cli(*command))
    assert f"{path}" in line and says in line, line


@pytest.mark.parametrize("name", ["flywheel.yaml", "features.yaml", "transforms/t.sql",
                                  "schemas/com.example/page_view/jsonschema/1-0-1",
                                  "definitions.py"])
def test_a_utf8_byte_order_mark_is_read_past(cli: Invoke, project_dir: Path,
                                             name: str) -> None:
    texts = {"features.yaml": "entities: [{name: user, join_keys: [user_id]}]\n",
             "transforms/t.sql": "-- inputs: com.example/page_view\nselect user_id from "
                                 "page_view\n",
             "definitions.py": "from flywheel.features import Entity\n\n"
                               "user = Entity(name='user', join_keys=['user_id'])\n"}
    path = project_dir / name
    schema = project_dir / "schemas/com.example/page_view/jsonschema/1-0-0"
    if name in texts:
        text = texts[name]
    elif name.endswith("1-0-1"):
        text = schema.read_text().replace('"1-0-0"', '"1-0-1"')
    else:
        text = path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = cli("apply")
    assert result.exit_code == 0, result.output
    if name == "transforms/t.sql":
        assert "t" in result.stdout.split("transforms")[-1]


@pytest.mark.parametrize(("document", "says"), [
    ('{"type": "object", "properties": {"a": {"type": "number", "maximum": Infinity}}}',
     "a value cannot be read: Infinity is not a JSON value"),
    ('{"type": "object", "properties": {"a": {"type": "number", "minimum": NaN}}}',
     "NaN is not a JSON value"),
    ('{"type": "object", "properties": {"a": {"type": "integer", "maximum": 1'
     + "0" * 5_000 + "}}}", "a number is longer than 4,300 digits"),
    ('{"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/x.json"}}}',
     "at #/properties/a: $ref 'http://127.0.0.1:9/x.json' points to another document"),
    ('{"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}}',
     "points to another document"),
    ('{"definitions": {"x": {"$ref": "#/definitions/y"}, "y": {"allOf": [{"$ref": '
     '"#/definitions/x"}]}}, "type": "object", "properties": {"a": {"$ref": '
     '"#/definitions/x"}}}', "refers back to itself without reading any part of the value"),
])
def test_a_schema_every_event_would_fail_on_is_refused_at_apply(
        cli: Invoke, project_dir: Path, document: str, says: str) -> None:
    path = project_dir / "schemas/com.example/click/jsonschema/1-0-0"
    path.parent.mkdir(parents=True)
    path.write_text(document)
    line = assert_one_line_error(cli("apply"))
    assert f"{path}: " in line and says in line, line


def test_a_schema_whose_references_recurse_through_the_data_is_applied(
        cli: Invoke, project_dir: Path) -> None:
    path = project_dir / "schemas/com.example/tree/jsonschema/1-0-0"
    path.parent.mkdir(parents=True)
    path.write_text('{"definitions": {"node": {"type": "object", "properties": {"children": '
                    '{"type": "array", "items": {"$ref": "#/definitions/node"}}}}}, '
                    '"type": "object", "properties": {"root": {"$ref": "#/definitions/node"}}}')
    result = cli("apply")
    assert result.exit_code == 0, result.output
    event = ('{"schema": "iglu:com.example/tree/jsonschema/1-0-0", "data": {"root": '
             '{"children": [{"children": []}]}}}')
    ingested = cli("ingest", "-", input=event + "\n")
    assert counts(ingested)["accepted"] == 1, ingested.output


@pytest.mark.parametrize(("body", "says"), [
    ("select user_id from page_view;\nselect 2", "its SQL holds 2 statements"),
    ("select user_id\nfrom page_view\nwhere (", 't.sql:5: its SQL does not parse: Parser '
     'Error: syntax error at or near "("'),
    ("insert into page_view values (1)", "its SQL is a INSERT statement, not a query"),
    ("select 'a\0b' as user_id from page_view", "t.sql:3: holds a NUL byte"),
])
def test_sql_that_is_not_one_query_is_refused_at_apply(cli: Invoke, project_dir: Path,
                                                       body: str, says: str) -> None:
    (project_dir / "transforms").mkdir()
    (project_dir / "transforms/t.sql").write_text(
        f"-- inputs: com.example/page_view\n-- materialized: table\n{body}\n")
    assert says in assert_one_line_error(cli("apply"))


@pytest.mark.parametrize(("source", "says"), [
    ("import sys\nsys.exit(3)\n", "definitions.py: importing it called exit(3)"),
    ("x = " + "-" * 100_000 + "1\n", "definitions.py: nested too deeply for Python to compile"),
    ("x = 1\0\n", "definitions.py holds a NUL byte (at character 5)"),
    ("x = '\xe9'\n", "definitions.py is not UTF-8 text (byte 0xe9 at offset 5)"),
    ("# -*- coding: klingon -*-\nx = 1\n", "unknown encoding: klingon"),
    ("def f(:\n    pass\n", "definitions.py:1: invalid syntax"),
])
def test_a_python_definitions_file_that_cannot_run_is_one_line(
        cli: Invoke, project_dir: Path, source: str, says: str) -> None:
    (project_dir / "definitions.py").write_bytes(source.encode("latin-1"))
    for command in (["apply"], ["features", "list"]):
        assert says in assert_one_line_error(cli(*command))


@pytest.mark.parametrize(("pipeline", "says"), [
    (".x:pipeline", "'.x' is neither a file of the project nor a module name"),
    ("json:pipeline", "pipeline json:pipeline: pipeline is nothing, not a Pipeline"),
])
def test_a_pipeline_reference_that_is_no_module_is_one_line(
        cli: Invoke, project_dir: Path, pipeline: str, says: str) -> None:
    spec = project_dir / "train.yaml"
    spec.write_text(f"pipeline: {pipeline}\n")
    assert says in assert_one_line_error(cli("run", str(spec)))


def test_a_fix_file_that_does_not_import_is_one_line(cli: Invoke, tmp_path: Path) -> None:
    fix = tmp_path / "fix.py"
    fix.write_text("def repair(event:\n")
    line = assert_one_line_error(cli("log", "recover", "--fix", f"{fix}:repair"))
    assert f"{fix}:1: " in line


ON_DEMAND = '''
from flywheel.features import Entity, FeatureView, on_demand

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits", features=["pages"])


@on_demand(sources=["visits:pages"], features=["many"])
def busy(row):
    return {"many": row["pages"] > 1, "extra": 1}
'''


def test_an_on_demand_function_returning_other_keys_is_one_line(runner: CliRunner,
                                                                project_dir: Path) -> None:
    write_visits_project(project_dir, ON_DEMAND)

    def cli(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["--project", str(project_dir), *args], input=input)

    event = json.dumps({"schema": VISIT, "data": {"user_id": "a", "pages": 3, "seconds": 1.0}})
    for command in (["apply"], ["ingest", "-"], ["transform"], ["features", "materialize"]):
        result = cli(*command, input=event + "\n")
        assert result.exit_code == 0, result.output
    line = assert_one_line_error(cli("features", "get", "-e", "user_id=a", "-f", "busy:many"))
    assert "on-demand view busy returned other keys than it declares (undeclared extra)" in line
