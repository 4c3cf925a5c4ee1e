"""`flywheel predict`: the scores of a file or table, and bad input as one line, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from flywheel.serving.batch_scores import PROBABILITY
from tests.serving.batch_support import build, entity_rows

Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scored project for the module: these tests only read it, or write files."""
    from flywheel.scaffold import init_project

    root = init_project(tmp_path_factory.mktemp("batch") / "proj")
    build(root).close()
    pq.write_table(entity_rows(25), root / "entities.parquet")
    return root


@pytest.fixture
def cli(built: Path) -> Invoke:
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200",
                            "FLYWHEEL_PROJECT": None, "FLYWHEEL_DEBUG": None})

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--project", str(built), *args])

    return invoke


def test_predict_writes_the_scores_and_says_what_it_did(cli: Invoke, built: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    result = cli("predict", "--model", "purchase@champion", "--input",
                 str(built / "entities.parquet"), "--output", str(out), "--chunk-size", "10")
    assert result.exit_code == 0, result.output
    assert "purchase" in result.stdout and "25" in result.stdout
    scores = pq.read_table(out)
    assert scores.num_rows == 25
    assert scores.column(PROBABILITY).null_count == 0


def test_predict_to_a_table_and_as_of(cli: Invoke, built: Path) -> None:
    result = cli("predict", "-m", "purchase", "-i", "user_daily", "-o", "table:cli_scores",
                 "--as-of", "2026-01-05")
    assert result.exit_code == 0, result.output
    shown = cli("tables", "show", "cli_scores", "-n", "3")
    assert shown.exit_code == 0, shown.output
    assert "2026-01-05" in shown.stdout


def test_predict_reads_the_time_from_another_column(cli: Invoke, built: Path,
                                                    tmp_path: Path) -> None:
    rows = entity_rows(5).rename_columns(["user_id", "seen_at", "row"])
    pq.write_table(rows, tmp_path / "seen.parquet")
    out = tmp_path / "out.parquet"
    result = cli("predict", "-m", "purchase", "-i", str(tmp_path / "seen.parquet"),
                 "-o", str(out), "--timestamp-column", "seen_at")
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).column("seen_at").to_pylist() == rows.column(
        "seen_at").to_pylist()
    refused = cli("predict", "-m", "purchase", "-i", str(tmp_path / "seen.parquet"),
                  "-o", str(out))
    assert refused.exit_code == 2 and "lacks column(s) event_timestamp" in refused.stderr


def _bad_file(path: Path, text: bytes) -> str:
    path.write_bytes(text)
    return str(path)


@pytest.mark.parametrize(("args", "reason"), [
    (["--model", "nobody"], "no model 'nobody'"),
    (["--model", "purchase@retired"], "model 'purchase' has no alias 'retired'"),
    (["--model", "purchase/9"], "model 'purchase' has no version 9"),
    (["--model", "not a uri"], "cannot read the model URI"),
    (["--input", "missing.parquet"], "no derived table or file named missing.parquet"),
    (["--input", "user_visits_typo"], "no derived table or file named user_visits_typo"),
    (["--output", "table:user_daily"], "table 'user_daily' is built by a transform"),
    (["--output", "table:Bad-Name"], "is not a valid table name"),
    (["--output", "/no/such/folder/out.parquet"], "no folder /no/such/folder"),
    (["--as-of", "yesterday"], "cannot read the time 'yesterday'"),
    (["--chunk-size", "0"], "--chunk-size"),
])
def test_bad_arguments_are_one_line_and_exit_2(cli: Invoke, built: Path, tmp_path: Path,
                                               args: list[str], reason: str) -> None:
    given = {"--model": "purchase@champion", "--input": str(built / "entities.parquet"),
             "--output": str(tmp_path / "out.parquet")}
    given.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = cli("predict", *[part for pair in given.items() for part in pair])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert reason in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("garbage.parquet", b"PAR1 this is not parquet", "cannot read"),
    ("garbage.csv", b"user_id,event_timestamp\nu1,2026-01-01\nu2,2026-01-01,extra\n",
     "cannot read"),
    ("garbage.ndjson", b'{"user_id": "u1"\n', "cannot read"),
    ("no_time.csv", b"user_id\nu1\n", "lacks column(s) event_timestamp"),
    ("no_key.csv", b"event_timestamp\n2026-01-01T00:00:00Z\n", "lacks column(s) user_id"),
    ("entities.txt", b"u1\n", "cannot tell the format"),
    ("clash.csv", b"user_id,event_timestamp,model\nu1,2026-01-01T00:00:00Z,x\n",
     "has column(s) model"),
])
def test_unreadable_or_unfit_inputs_are_one_line_and_exit_2(
        cli: Invoke, tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = _bad_file(tmp_path / name, content)
    out = tmp_path / "out.parquet"
    result = cli("predict", "--model", "purchase", "--input", path, "--output", str(out))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert reason in lines[0]
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [name]


def test_the_output_cannot_be_the_input(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"user_id": ["u1"], "event_timestamp": ["2026-01-02T00:00:00Z"]}),
                   path)
    result = cli("predict", "-m", "purchase", "-i", str(path), "-o", str(path))
    assert result.exit_code == 2
    assert "is the input" in result.stderr
    assert pq.read_table(path).num_rows == 1
