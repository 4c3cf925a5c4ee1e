"""A drift monitor of a table against a fixed window: each window's figures equal
`drift_report` on that window's rows, however the columns are grouped for reading; windows
are kept once, also with two `flywheel monitor run` processes at the same time."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from flywheel.monitoring import drift_windows
from flywheel.monitoring.drift import drift_report
from flywheel.monitoring.table import results_from_arrow
from flywheel.project import Project

DAY = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
ROWS_PER_DAY = 400
MONITORS = f"""
monitors:
  wide_drift:
    kind: drift
    target: {{table: wide}}
    window: 1d
    min_rows: 50
    reference: {{start: "{DAY.isoformat()}", end: "{(DAY + dt.timedelta(days=1)).isoformat()}"}}
"""


def _day(day: int, *, shifted: bool, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, 86_400_000_000, ROWS_PER_DAY))
    start = int((DAY + dt.timedelta(days=day)).timestamp() * 1_000_000)
    levels = np.array(["a", "b", "c"])
    return pa.table({
        "event_time": pa.array(offsets + start, pa.int64()).cast(pa.timestamp("us", "UTC")),
        "amount": rng.normal(2.0 if shifted else 0.0, 1.0, ROWS_PER_DAY),
        "count": rng.integers(0, 1_000, ROWS_PER_DAY),
        "kind": levels[rng.choice(3, ROWS_PER_DAY, p=[0.1, 0.2, 0.7] if shifted
                                  else [0.5, 0.3, 0.2])],
        "steady": rng.normal(0.0, 1.0, ROWS_PER_DAY),
    })


def _project(root: Path, days: int, shifted_from: int, metadata: str | None = None,
             ) -> Project:
    project = Project.init(root)
    if metadata is not None:
        config = project.root / "flywheel.yaml"
        lines = [f"metadata: {metadata}" if line.startswith("metadata:") else line
                 for line in config.read_text().splitlines()]
        config.write_text("\n".join(lines) + "\n")
        project.close()
        project = Project.open(project.root)
    (project.root / "monitors.yaml").write_text(MONITORS)
    handle = project.tables.handle("wide")
    for day in range(days):
        rows = _day(day, shifted=day >= shifted_from, seed=day)
        if not handle.exists():
            handle.create(rows.schema)
        handle.append(rows)
    return project


def _kept(project: Project) -> list:  # type: ignore[type-arg]
    return results_from_arrow(project.tables.read("monitor_wide_drift"))


def _expected(project: Project, window_start: dt.datetime) -> dict[str, float | None]:
    rows = project.tables.read("wide")
    times = rows.column("event_time")

    def between(start: dt.datetime) -> pa.Table:
        mask = pc.and_(pc.greater_equal(times, pa.scalar(start, times.type)),
                       pc.less(times, pa.scalar(start + dt.timedelta(days=1), times.type)))
        return rows.filter(mask).drop_columns(["event_time"])

    report = drift_report(between(DAY), between(window_start))
    return {c.column: c.p_value if c.statistic in ("ks", "chi2") else c.value
            for c in report.columns}


@pytest.mark.parametrize("budget", [drift_windows.READ_BUDGET, 1])
def test_each_window_equals_drift_report_on_its_rows(tmp_path: Path, budget: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A budget of one byte reads one column at a time: the figures must not change.
    monkeypatch.setattr(drift_windows, "READ_BUDGET", budget)
    project = _project(tmp_path / "p", days=5, shifted_from=3)
    (evaluation,) = project.run_monitors(alerts=False)
    assert evaluation.windows == 4  # the fifth day is still open
    kept = _kept(project)
    for start in {r.window_start for r in kept}:
        expected = _expected(project, start)
        found = {r.subject: r.value for r in kept
                 if r.window_start == start and r.subject != "dataset"}
        assert found.keys() == expected.keys()
        for column, value in expected.items():
            assert found[column] == pytest.approx(value, rel=1e-12, abs=1e-15), column
    red = {(r.window_start, r.subject) for r in kept if r.status == "red"}
    drifted_days = {start for start, _ in red}
    assert drifted_days == {DAY + dt.timedelta(days=3)}
    assert {subject for _, subject in red} == {"amount", "kind", "dataset"}


def test_a_new_day_adds_one_window_and_nothing_twice(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", days=3, shifted_from=99)
    project.run_monitors(alerts=False)
    before = _kept(project)
    (again,) = project.run_monitors(alerts=False)
    assert again.mode == "up to date" and again.windows == 0
    handle = project.tables.handle("wide")
    handle.append(_day(3, shifted=False, seed=3))
    (grown,) = project.run_monitors(alerts=False)
    assert grown.mode == "incremental" and grown.windows == 1
    after = _kept(project)
    assert set(before) <= set(after)
    lanes = [(r.window_start, r.subject) for r in after]
    assert len(lanes) == len(set(lanes))


@pytest.mark.parametrize("metadata", ["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def test_two_monitor_runs_at_once_keep_every_window_once(
        tmp_path: Path, metadata: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if metadata == "postgres" else None
    project = _project(tmp_path / "p", days=8, shifted_from=99, metadata=url)
    command = [str(Path(sys.executable).with_name("flywheel")), "--project",
               str(project.root), "monitor", "run", "--no-alerts", "--json"]
    env = {**os.environ, "FLYWHEEL_NO_PROGRESS": "1"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    kept = _kept(project)
    lanes = [(r.window_start, r.subject) for r in kept]
    assert len(lanes) == len(set(lanes))
    assert len({r.window_start for r in kept}) == 7
    # One of the two did the work, the other found it done.
    history = project.metadata.table_versions("monitor_wide_drift")
    assert len(history) == 1
    project.close()


def test_late_rows_in_a_kept_window_rebuild_the_table_as_a_replay_would(
        tmp_path: Path) -> None:
    project = _project(tmp_path / "p", days=4, shifted_from=99)
    project.run_monitors(alerts=False)
    before = {r.window_start: r.rows for r in _kept(project) if r.subject == "dataset"}
    # Rows of day 2, a window already kept, arrive after it was evaluated (shifted ones).
    late = _day(2, shifted=True, seed=42)
    project.tables.handle("wide").append(late)
    (evaluation,) = project.run_monitors(alerts=False)
    assert evaluation.mode == "full"
    incremental = _kept(project)
    day2 = DAY + dt.timedelta(days=2)
    dataset = {r.window_start: r for r in incremental if r.subject == "dataset"}
    assert dataset[day2].rows == before[day2] + late.num_rows
    assert dataset[day2].status == "red"
    project.run_monitors(alerts=False, full=True)
    assert _kept(project) == incremental
    (quiet,) = project.run_monitors(alerts=False)
    assert quiet.mode == "up to date"
    project.close()
