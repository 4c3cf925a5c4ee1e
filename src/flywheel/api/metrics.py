"""`GET /metrics` in the Prometheus text format, and what the serving routes count.

Requests, errors, latency and batch sizes are counted in the process that answers, by
prometheus_client. With several worker processes (`flywheel serve --workers N`) the
server sets `PROMETHEUS_MULTIPROC_DIR` before the workers start: each writes its values
there and a scrape of any worker sums them all. The log's own figures (events stored,
rejected into bad rows and answered as duplicates, commits per table) are read from the
log at scrape time, so they are the log's totals whatever process wrote them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import APIRouter
from fastapi.params import Depends
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from flywheel.project import Project
    from flywheel.serving.results import PredictionBatch

__all__ = ["CONTENT_TYPE", "MULTIPROCESS_ENV", "LogCollector", "ServingMetrics",
           "metrics_router"]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable: where worker processes keep their values."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10_000)
_UNKNOWN = "(unknown)"  # the label of a deployment that does not exist: bounded cardinality


class ServingMetrics:
    """The serving routes' counters and histograms, and their rendering."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        path = multiprocess_dir or os.environ.get(MULTIPROCESS_ENV) or None
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode values live in files, collected from there: the metrics
        # themselves are registered nowhere (else each would be counted twice).
        target: CollectorRegistry | None = self.registry
        if path is not None:
            MultiProcessCollector(self.registry, path=path)  # type: ignore[no-untyped-call]
            target = None
        self.requests = Counter(
            "flywheel_predict_requests", "Prediction requests received",
            ["deployment", "route"], registry=target)
        self.errors = Counter(
            "flywheel_predict_errors", "Prediction requests answered with an error",
            ["deployment", "route", "status"], registry=target)
        self.latency = Histogram(
            "flywheel_predict_latency_seconds", "Time to answer a prediction request, per "
            "member and model version that answered rows of it",
            ["deployment", "member", "model_version"], buckets=_LATENCY_BUCKETS,
            registry=target)
        self.predictions = Counter(
            "flywheel_predictions", "Rows scored", ["deployment", "member", "model_version"],
            registry=target)
        self.batch_size = Histogram(
            "flywheel_prediction_batch_rows", "Rows per request answered by a member and "
            "model version", ["deployment", "member", "model_version"],
            buckets=_BATCH_BUCKETS, registry=target)
        self.feedback = Counter("flywheel_feedback", "Feedback events recorded",
                                registry=target)
        # The labelled children, kept: `labels()` takes a lock and builds its key on
        # every call, a cost per request on the predict path.
        self._requests: dict[tuple[str, str], Counter] = {}
        self._members: dict[tuple[str, str, str], tuple[Counter, Histogram, Histogram]] = {}

    def add_collector(self, collector: Collector) -> None:
        """Figures read at scrape time (the log's)."""
        self.registry.register(collector)

    def observe(self, route: str, deployment: str, batch: PredictionBatch,
                seconds: float) -> None:
        """One answered request: its rows per member and version, and its latency."""
        self._request_counter(deployment, route).inc()
        groups: dict[tuple[str, int], int] = {}
        for row in batch.rows:
            key = (row.member, row.version)
            groups[key] = groups.get(key, 0) + 1
        for (member, version), rows in groups.items():
            key3 = (deployment, member, str(version))
            children = self._members.get(key3)
            if children is None:
                children = (self.predictions.labels(*key3), self.batch_size.labels(*key3),
                            self.latency.labels(*key3))
                self._members[key3] = children
            predictions, batch_size, latency = children
            predictions.inc(rows)
            batch_size.observe(rows)
            latency.observe(seconds)

    def _request_counter(self, deployment: str, route: str) -> Counter:
        key = (deployment, route)
        found = self._requests.get(key)
        if found is None:
            found = self._requests[key] = self.requests.labels(deployment, route)
        return found

    def failed(self, route: str, deployment: str | None, status: int) -> None:
        """A request answered with an error (`deployment` None when it is not known)."""
        name = deployment or _UNKNOWN
        self._request_counter(name, route).inc()
        self.errors.labels(name, route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LogCollector(Collector):
    """The log's totals, read when scraped: events per table, door and outcome, and the
    commits of each table (its offsets)."""

    def __init__(self, project: Project) -> None:
        self._project = project

    def collect(self) -> Iterable[Metric]:
        events = CounterMetricFamily(
            "flywheel_log_events", "Events received by the log, per table, door and outcome "
            "(stored, rejected into bad rows, duplicate)", labels=["table", "door", "outcome"])
        bad = CounterMetricFamily("flywheel_bad_rows", "Inputs rejected into bad rows, per "
                                  "door", labels=["door"])
        commits = CounterMetricFamily("flywheel_log_commits", "Commits of each log table",
                                      labels=["table"])
        rejected: dict[str, int] = {}
        log = self._project.log
        for receipt in log.receipts():
            for outcome, count in (("stored", receipt.accepted), ("rejected", receipt.rejected),
                                   ("duplicate", receipt.duplicates)):
                events.add_metric([receipt.table, receipt.door, outcome], count)
            rejected[receipt.door] = rejected.get(receipt.door, 0) + receipt.rejected
        for door, count in sorted(rejected.items()):
            bad.add_metric([door], count)
        for table, version in _table_versions(self._project):
            commits.add_metric([table], version + 1)
        return [events, bad, commits]

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing to check at registration: the figures are read per scrape


def _table_versions(project: Project) -> list[tuple[str, int]]:
    store = project.log_store
    found = []
    for ref in project.log.tables():
        version = store.handle(ref).version()
        if version is not None:
            found.append((str(ref), version))
    return found


def metrics_router(metrics: ServingMetrics, dependencies: Sequence[Depends] = (),
                   ) -> APIRouter:
    """`GET /metrics`; `dependencies` (the `read` token check) run first."""
    router = APIRouter(tags=["metrics"])
    render: Callable[[], bytes] = metrics.render

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                dependencies=list(dependencies),
                responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                                 "description": "The Prometheus text format"}})
    async def get_metrics() -> Response:
        """Prediction requests, errors, latency and rows per deployment, member and model
        version; feedback; the log's events, bad rows and commits. With several worker
        processes, every worker's figures summed."""
        body = await anyio.to_thread.run_sync(render)  # the log's figures read from disk
        return Response(body, media_type=CONTENT_TYPE)

    return router

