"""A served model and simulated traffic under a clock the test moves: predictions each hour,
their outcomes some minutes later, and drift injected from a given hour."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from flywheel.project import Project
from flywheel.serving import Deployments
from tests.monitoring.retraining_support import ingest_visits, write_retraining_project

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
PER_HOUR = 60


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Traffic:
    project: Project
    deployments: Deployments
    clock: Clock
    drift_from: int | None = None
    hours: int = 0
    predictions: list[str] = field(default_factory=list)

    def hour(self) -> None:
        """One hour of traffic: PER_HOUR predictions, each outcome 10 minutes later."""
        start = T0 + self.hours * HOUR
        drifted = self.drift_from is not None and self.hours >= self.drift_from
        served = self.deployments.get("purchase")
        answered = []
        for i in range(PER_HOUR):
            self.clock.now = start + dt.timedelta(seconds=i * 3600 // PER_HOUR)
            pages = (i * 7) % 10 + (15 if drifted else 0)
            seconds = float((i * 5) % 13)
            batch = served.predict(instances=[{"pages": pages, "seconds": seconds}])
            answered.append((batch.rows[0].prediction_id, pages > 4))
        for i, (prediction_id, bought) in enumerate(answered):
            when = start + dt.timedelta(seconds=i * 3600 // PER_HOUR, minutes=10)
            result = self.deployments.record_feedback(
                prediction_id=prediction_id, outcome=1.0 if bought else 0.0, time=when)
            assert result.accepted == 1
        self.deployments.prediction_log.flush()
        self.predictions += [p for p, _ in answered]
        self.hours += 1


def served_project(root: Path) -> Project:
    """The retraining project, trained, its model champion and deployed."""
    write_retraining_project(root)
    project = Project.open(root)
    project.apply()
    ingest_visits(project)
    run = project.run("pipelines/train.yaml")
    version = project.registry.register("purchase", run_id=run.id)
    project.registry.set_alias("purchase", "champion", version=version.version)
    (root / "deployments").mkdir(exist_ok=True)
    (root / "deployments" / "purchase.yaml").write_text("model: purchase@champion\n")
    project.apply()
    return project


def traffic(project: Project, *, drift_from: int | None) -> Traffic:
    clock = Clock()
    deployments = Deployments(folder=project.root / "deployments", registry=project.registry,
                              features=project.features, ingestor=project.ingestor,
                              log_store=project.log_store, clock=clock)
    return Traffic(project=project, deployments=deployments, clock=clock,
                   drift_from=drift_from)
