"""The simulated drift is visible where the monitors look: the features of the cart adds
after the drift day differ from those before it (a new source, higher prices), while two
undrifted days do not differ in those features."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from flywheel.monitoring.drift import drift_report
from flywheel.project import Project
from flywheel.scaffold import init_project
from flywheel.simulate import simulate_shop
from tests.simulate.support import START

COLUMNS = ["from_other", "price"]


def _features(project: Project, since: str, until: str) -> pa.Table:
    query = (
        "select user_id, product_id, event_time as event_timestamp from training_labels"
        f" where event_time >= timestamptz '{since}' and event_time < timestamptz '{until}'"
    )
    training = project.features.get_historical_features(query, feature_service="purchase")
    return training.to_arrow().select(COLUMNS)


def test_the_drift_day_moves_the_features_the_model_reads(tmp_path: Path) -> None:
    with Project.open(init_project(tmp_path / "shop", example="shop")) as project:
        project.apply()
        events = simulate_shop(
            days=4, seed=2, users=2000, products=300, start=START, drift_from_day=2
        )
        project.ingest(list(events))
        project.transform()
        day = [f"2026-01-0{d}T00:00:00Z" for d in range(1, 6)]
        first, second, third = (_features(project, day[d], day[d + 1]) for d in range(3))
    assert min(t.num_rows for t in (first, second, third)) > 300
    calm = drift_report(first, second)
    drifted = drift_report(first, third)
    assert not any(c.drifted for c in calm.columns), calm
    assert all(c.drifted for c in drifted.columns), drifted
    assert pa.compute.sum(first.column("from_other")).as_py() == 0
