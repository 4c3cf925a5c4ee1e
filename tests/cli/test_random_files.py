"""Random and mangled bytes in every file a project reads: each command that reads the file
ends with exit 0 or 2 and, on error, one line — never a traceback, an "unexpected" error,
or a hang.

The files, and the commands that read them:

    flywheel.yaml                        every command (the project opens with it)
    schemas/<vendor>/<name>/jsonschema/<version>   apply
    transforms/*.sql, transforms/*.py    apply, transform (and features, run: their tables)
    definitions.py, features.yaml        apply, features list, transform (sort orders), run
    pipelines/*.yaml, pipelines/*.py     run

Each example starts from a copy of one applied, ingested and built project, so a mangled
file that applies cleanly cannot change what the next example sees.
"""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from tests.cli.conftest import page_view

SCHEMA = "schemas/com.example/page_view/jsonschema/1-0-0"
SQL = "transforms/user_pages.sql"
PY_TRANSFORM = "transforms/user_totals.py"
DEFINITIONS = "definitions.py"
FEATURES_YAML = "features.yaml"
SPEC = "pipelines/train.yaml"
PIPELINE = "pipelines/train.py"
CONFIG = "flywheel.yaml"

FILES: dict[str, str] = {
    SQL: """\
-- inputs: com.example/page_view
-- materialized: table
-- unique_key: user_id
-- expect: not_null(user_id)
-- expect: range(pages, 0, )
select user_id, count(*) as pages, max(event_time) as event_time
from page_view group by user_id
""",
    PY_TRANSFORM: '''\
import pyarrow as pa

from flywheel.transforms import transform


@transform(inputs=["user_pages"], expect=["not_null(user_id)"])
def user_totals(user_pages: pa.Table) -> pa.Table:
    table = user_pages.select(["user_id", "pages", "event_time"])
    return table.rename_columns(["user_id", "total_pages", "event_time"])
''',
    DEFINITIONS: '''\
import datetime as dt

from flywheel.features import Entity, FeatureService, FeatureView, on_demand

user = Entity(name="user", join_keys=["user_id"])
pages = FeatureView(name="pages", entities=[user], source="user_pages",
                    features=["pages"], ttl=dt.timedelta(days=30))


@on_demand(sources=["pages:pages"], features=["many"])
def busy(row):
    return {"many": (row["pages"] or 0) > 1}


score = FeatureService(name="score", features=["pages:pages", "totals:*"])
''',
    FEATURES_YAML: """\
entities:
  - {name: user, join_keys: [user_id]}
feature_views:
  - name: totals
    entities: [user]
    source: user_totals
    ttl: 30d
    features: [{name: total_pages, dtype: int}]
""",
    PIPELINE: '''\
import pyarrow as pa

from flywheel.pipelines import Pipeline


def rows(training_set: pa.Table) -> int:
    return training_set.num_rows


def doubled(rows: int, factor: int = 2) -> int:
    return rows * factor


pipeline = Pipeline("train", steps=[rows, doubled])
''',
    SPEC: """\
pipeline: pipelines/train.py:pipeline
params: {factor: 3}
training_data:
  feature_service: score
  entities: select user_id, event_time as event_timestamp from user_pages
  start: 2020-01-01
resources:
  doubled: {cpus: 1, memory: 64MB}
tags: {team: search}
""",
}

NEW_VERSION = "schemas/com.example/page_view/jsonschema/1-1-0"
NEW_SCHEMA = "schemas/com.example/click/jsonschema/1-0-0"
NEW: dict[str, str] = {
    NEW_VERSION: """\
{"$schema": "http://json-schema.org/draft-07/schema#",
 "self": {"vendor": "com.example", "name": "page_view", "format": "jsonschema",
          "version": "1-1-0"},
 "type": "object",
 "properties": {"user_id": {"type": "string", "maxLength": 128},
                "url": {"type": "string", "maxLength": 4096},
                "referrer": {"type": ["string", "null"], "maxLength": 4096},
                "seconds": {"type": ["number", "null"], "minimum": 0}},
 "required": ["user_id", "url"], "additionalProperties": false}
""",
    NEW_SCHEMA: """\
{"$schema": "http://json-schema.org/draft-07/schema#",
 "type": "object",
 "properties": {"user_id": {"type": "string", "pattern": "^u[0-9]+$"},
                "at": {"type": "string", "format": "date-time"},
                "button": {"enum": ["buy", "back"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
                "where": {"type": "object", "properties": {"x": {"type": "integer"}},
                          "required": ["x"]}},
 "required": ["user_id"], "additionalProperties": false}
""",
}
"""Files a project may gain: a new version of a registered schema, a new schema."""

ALL = ("apply", "transform", "features list", f"run {SPEC}", "log stats")
COMMANDS: dict[str, tuple[str, ...]] = {
    CONFIG: ALL,
    SCHEMA: ("apply", "log stats"),
    NEW_VERSION: ("apply", "log stats"),
    NEW_SCHEMA: ("apply", "log stats"),
    SQL: ("apply", "transform", f"run {SPEC}"),
    PY_TRANSFORM: ("apply", "transform", f"run {SPEC}"),
    DEFINITIONS: ("apply", "features list", "transform", f"run {SPEC}"),
    FEATURES_YAML: ("apply", "features list", "transform", f"run {SPEC}"),
    SPEC: (f"run {SPEC}",),
    PIPELINE: (f"run {SPEC}",),
}
UNEXPECTED = re.compile(r"^error: unexpected [A-Z]\w*:", re.MULTILINE)
SECONDS = 20
"""A command reading one small file that runs longer than this is taken as hung."""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose every file is valid: applied, ingested, transformed, run once."""
    return build_template(tmp_path_factory.mktemp("random") / "proj")


def build_template(folder: Path) -> Path:
    from flywheel.scaffold import init_project

    root = init_project(folder)
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    invoke = _runner(root)
    for command in ("apply", "ingest -", "transform", f"run {SPEC}"):
        stdin = "\n".join(page_view(u) for u in ("u1", "u2", "u2")) + "\n"
        result = invoke(command, stdin if command.startswith("ingest") else None)
        assert result.exit_code == 0, (command, result.output)
    return root


def _runner(root: Path) -> Callable[[str, str | None], Result]:
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200",
                            "FLYWHEEL_PROJECT": None, "FLYWHEEL_DEBUG": None})

    def invoke(command: str, stdin: str | None = None) -> Result:
        words = [str(root / w) if w == SPEC else w for w in command.split()]
        return runner.invoke(app, ["--project", str(root), *words], input=stdin)

    return invoke


class Hung(Exception):
    """A command did not finish within SECONDS."""


@pytest.fixture
def no_hangs() -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"a command ran longer than {SECONDS}s")

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_clean(command: str, result: Result) -> None:
    """Exit 0, or 2 with one `error:` line; `run` may exit 1 when a step it ran raised."""
    said = f"{command}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output, said
    assert not UNEXPECTED.search(result.stderr), said
    assert not isinstance(result.exception, Hung | AssertionError), said
    if result.exit_code == 0:
        return
    lines = result.stderr.strip().splitlines()
    step_failed = command.startswith("run") and result.exit_code == 1 and bool(lines) \
        and " failed: " in lines[-1] and "--resume" in lines[-1]
    assert result.exit_code == 2 or step_failed, said
    if step_failed:
        return
    assert len(lines) == 1 and lines[0].startswith("error: "), said
    assert len(lines[0]) < 2_000, said


# Mutations of a valid file -------------------------------------------------------------
NESTING = st.sampled_from([60, 150, 200, 1_000, 100_000])


@st.composite
def nested(draw: st.DrawFn, name: str) -> bytes:
    """Deeply nested text of the file's own language."""
    depth = draw(NESTING)
    if name.endswith(".py"):
        form = draw(st.sampled_from(["paren", "indent", "unary"]))
        if form == "paren":
            return b"x = " + b"(" * depth + b"1" + b")" * depth + b"\n"
        if form == "indent":
            depth = min(depth, 1_000)
            return b"".join(b" " * i + b"if True:\n" for i in range(depth)) + \
                b" " * depth + b"pass\n"
        return b"x = " + b"-" * depth + b"1\n"
    if name.endswith(".sql"):
        return (b"-- inputs: com.example/page_view\nselect " + b"(" * depth + b"1"
                + b")" * depth + b" as user_id from page_view\n")
    if name.startswith("schemas/"):
        inner = b'{"type": "object", "properties": {"a": ' * depth + b"{}" + b"}}" * depth
        return b'{"type": "object", "properties": {"a": ' + inner + b"}}"
    flow = draw(st.booleans())
    if flow:
        return b"name: " + b"[" * depth + b"]" * depth + b"\n"
    depth = min(depth, 2_000)
    return b"name:\n" + b"".join(b"  " * i + b"- \n" for i in range(depth))


YAML_BOMB = b"""\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def yaml_bombs(name: str, valid: bytes) -> st.SearchStrategy[bytes]:
    """Anchors that expand to 10^8 values, placed where each file takes a list or a
    mapping; tags PyYAML knows and some it must refuse."""
    where = {CONFIG: [b"name: *h\n", b"server: {host: *h}\n", b"alerts: *h\n"],
             FEATURES_YAML: [b"feature_views:\n  - {name: v, entities: *h, source: s, "
                             b"features: *h}\n", b"entities: *h\n"],
             SPEC: [b"pipeline: pipelines/train.py:pipeline\nparams: {big: *h}\n",
                    b"pipeline: pipelines/train.py:pipeline\ntags: *h\n",
                    b"pipeline: pipelines/train.py:pipeline\nparams: *h\n"]}.get(name, [b""])
    tags = [b"!!python/object/apply:os.system ['true']\n", b"name: !!binary AAAA\n",
            b"name: !!binary '\xff'\n", b"name: !!set {a, b}\n", b"name: !custom x\n",
            b"name: !!timestamp 2026-99-99\n", b"name: !!int 1" + b"0" * 5_000 + b"\n",
            b"name: !!float 1e999999\n", b"name: !!omap [a, b]\n", b"<<: *nothing\n",
            b"a: &r [*r]\n", b"? [1, 2]\n: x\n", b"? {a: 1}\n: x\n", b"1: 2\n",
            b"name: x\nname: y\n", b"--- a\n--- b\n", b"%YAML 9.9\n--- x\n"]
    return st.one_of(
        st.sampled_from([YAML_BOMB + tail for tail in where]),
        st.sampled_from(tags),
        st.sampled_from(tags).map(lambda tag: valid + tag))


def truncated(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, len(valid)).map(lambda n: valid[:n])


@st.composite
def flipped(draw: st.DrawFn, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
    return bytes(data)


INSERTS = st.one_of(
    st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00",
                     b"\x00" * 100, b"\xef\xbb\xbf", b"\r", b"\t", b"\x1b[31m",
                     "\u2028".encode(), "\ufeff".encode(), b"\\", b"'", b'"', b":", b"-- ",
                     b"# ", b"{", b"[", b"&a ", b"*a ", b"!!", b"1e999", b"NaN", b"-0"]),
    st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=8))


@st.composite
def inserted(draw: st.DrawFn, valid: bytes) -> bytes:
    at = draw(st.integers(0, len(valid)))
    return valid[:at] + draw(INSERTS) + valid[at:]


def with_bom(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.sampled_from([b"\xef\xbb\xbf" + valid, b"\xff\xfe" + valid.decode().encode(
        "utf-16-le"), b"\xef\xbb\xbf\xef\xbb\xbf" + valid])


def contents(name: str, valid: bytes) -> st.SearchStrategy[bytes]:
    """Fully random bytes, or a valid file truncated, flipped, spliced, BOM'd, nested,
    bombed (YAML)."""
    mangled = [truncated(valid), flipped(valid), inserted(valid), with_bom(valid),
               nested(name)]
    if name.endswith(".yaml"):
        mangled.append(yaml_bombs(name, valid))
    once = st.one_of(st.binary(max_size=512), *mangled)
    twice = st.one_of(*mangled[:3]).flatmap(
        lambda first: st.one_of(truncated(first), flipped(first), inserted(first))
        if first else st.just(first))
    return st.one_of(once, twice)


@st.composite
def case(draw: st.DrawFn, template: Path) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    return name, draw(contents(name, valid(template, name)))


def valid(template: Path, name: str) -> bytes:
    return NEW[name].encode() if name in NEW else (template / name).read_bytes()


def run_case(template: Path, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="flywheel-random-") as folder:
        root = Path(folder) / "proj"
        shutil.copytree(template, root, symlinks=True)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        invoke = _runner(root)
        for command in COMMANDS[name]:
            signal.setitimer(signal.ITIMER_REAL, SECONDS)
            try:
                result = invoke(command)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert_clean(command, result)


@pytest.mark.slow
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_any_bytes_in_any_project_file_end_in_one_line(template: Path, no_hangs: None,
                                                       data: st.DataObject) -> None:
    name, content = data.draw(case(template))
    run_case(template, name, content)


def test_the_template_project_is_valid(template: Path) -> None:
    """Every command that the random cases run succeeds on the unchanged files, and on
    the files a project may gain."""
    invoke = _runner(template)
    for command in dict.fromkeys(c for cs in COMMANDS.values() for c in cs):
        result = invoke(command)
        assert result.exit_code == 0, (command, result.output)
    for name in NEW:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "proj"
            shutil.copytree(template, root, symlinks=True)
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(valid(template, name))
            result = _runner(root)("apply")
            assert result.exit_code == 0, (name, result.output)
            assert name.split("/")[2] in result.stdout, result.stdout
