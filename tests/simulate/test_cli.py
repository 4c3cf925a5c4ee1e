"""`flywheel simulate`: NDJSON to a file or stdout, a one-line summary, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli.main import app
from flywheel.simulate import simulate_shop
from tests.cli.conftest import assert_one_line_error
from tests.simulate.support import START, kind_of, malformation, when

ARGS = [
    "simulate",
    "--days",
    "2",
    "--seed",
    "7",
    "--users",
    "150",
    "--products",
    "40",
    "--start",
    "2026-01-01",
    "--malformed-share",
    "0.05",
    "--drift-from-day",
    "1",
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "FLYWHEEL_PROJECT": None})


def test_out_writes_what_the_sdk_yields_and_summarises(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "events.ndjson"
    result = runner.invoke(app, [*ARGS, "--out", str(target)])
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in target.read_text().splitlines()]
    expected = list(
        simulate_shop(
            days=2,
            seed=7,
            users=150,
            products=40,
            start=START,
            malformed_share=0.05,
            drift_from_day=1,
        )
    )
    assert written == expected
    [summary] = result.stderr.strip().splitlines()
    clean = [e for e in written if malformation(e) is None]
    purchases = sum(1 for e in clean if kind_of(e) == "purchase")
    broken = len(written) - len(clean)
    assert summary.startswith(f"simulated {len(written):,} events: ")
    assert f"{purchases:,} purchase; {broken:,} malformed" in summary


def test_out_dash_is_ndjson_on_stdout(runner: CliRunner) -> None:
    result = runner.invoke(app, [*ARGS, "--out", "-"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(json.loads(line)["schema"].startswith("iglu:") for line in lines)


def test_without_start_the_days_end_at_the_current_hour(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "e.ndjson"
    before = dt.datetime.now(dt.UTC)
    result = runner.invoke(app, ["simulate", "--days", "1", "--users", "300", "--out", str(target)])
    assert result.exit_code == 0, result.output
    times = [when(json.loads(line)) for line in target.read_text().splitlines()]
    hour = before.replace(minute=0, second=0, microsecond=0)
    assert hour - dt.timedelta(days=1) <= min(times)
    assert max(times) < hour + dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--days", "2"], "give one of --out FILE and --url URL"),
        (["--days", "2", "--out", "x", "--url", "http://h"], "give one of --out"),
        (["--days", "0", "--out", "x"], "--days"),
        (["--days", "2", "--malformed-share", "2", "--out", "x"], "--malformed-share"),
        (["--days", "2", "--drift-from-day", "2", "--out", "x"], "not within --days 2"),
        (["--days", "2", "--url", "ftp://h"], "not an http:// or https:// URL"),
        (["--days", "2", "--out", "x", "--token", "t"], "--token goes with --url"),
        (["--days", "2", "--start", "yesterday", "--out", "x"], "--start"),
        (["--days", "1", "--out", "/nonexistent/folder/e.ndjson"], "no such file or folder"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(runner: CliRunner, args: list[str], says: str) -> None:
    line = assert_one_line_error(runner.invoke(app, ["simulate", *args]))
    assert says in line


def test_help_teaches(runner: CliRunner) -> None:
    result = runner.invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0
    for words in (
        "--drift-from-day",
        "--malformed-share",
        "--url",
        "Zipf",
        "bad rows",
        "flywheel ingest",
    ):
        assert words in result.stdout
