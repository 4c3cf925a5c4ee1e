"""The whole loop on the shop example, through the doors a user's own project would use.

1. `flywheel init --example shop` and `apply`; `flywheel serve` in its own process.
2. Days of simulated traffic (the last one drifted: a partner source, higher prices) are
   sent to the collector over HTTP; the malformed ones end in bad rows, with reasons.
3. Transforms and features are built from the log; the training pipeline compares
   LightGBM with a logistic-regression baseline; the model is registered as champion
   (and as challenger, in shadow, until a retrained one takes that alias).
4. The last `LIVE_DAYS` days are played as live traffic, step by step: the features are
   materialised as of the step's start, every cart add of the step is scored by the model
   server (`POST /v1/models/purchase/predict`, with the cart add's own time), then the
   step's events reach the collector; outcomes derived from purchases 30 minutes later
   come back through `POST /v1/feedback`.
5. The monitors run over the log: drift against the champion's training set, live AUC
   after the label delay; the drift alert starts the retraining policy, which trains a
   challenger on fresh data, compares it with the champion on held-out labels and
   promotes it or not, with its reason in the registry's audit trail.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from flywheel._core.errors import FlywheelError, InputError

__all__ = ["DEPLOYMENT", "DRIFT_MONITOR", "LIVE_DAYS", "MODEL", "POLICY", "REPORT", "STEP",
           "TABLES", "DemoOptions", "DemoResult", "Reporter", "run_demo"]

LIVE_DAYS = 2
"""Days played as live traffic, the drifted last day among them."""
STEP = dt.timedelta(hours=2)
"""Live traffic moves on in steps: features as of the step's start serve its cart adds."""
MODEL, DEPLOYMENT, DRIFT_MONITOR, POLICY = "purchase", "purchase", "purchase_drift", \
    "retrain_purchase"
TABLES = ("sessions", "user_activity", "product_popularity", "training_labels",
          "purchase_feedback", "predictions_with_feedback")
REPORT = "monitoring.html"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    folder: Path
    days: int = 6
    seed: int = 7
    users: int = 3_000
    products: int = 300
    malformed_share: float = 0.01

    def __post_init__(self) -> None:
        if not 4 <= self.days <= 60:
            raise InputError(f"--days {self.days}: the demo needs 4 to 60 days",
                             hint=f"{LIVE_DAYS} are live, the rest train the first model")


@dataclass(slots=True, kw_only=True)
class DemoResult:
    folder: Path
    events: int = 0
    accepted: int = 0
    bad_rows: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    auc: float | None = None
    baseline_auc: float | None = None
    predictions: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    feedback: int = 0
    drift_day: dt.datetime | None = None
    drift_windows: list[dt.datetime] = field(default_factory=list)
    drifted_columns: list[str] = field(default_factory=list)
    alerts: int = 0
    decision: Any = None
    report: Path | None = None
    runs: list[str] = field(default_factory=list)
    """The first training run, then the retraining run."""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def p50_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def p99_ms(self) -> float | None:
        if len(self.latencies_ms) < 2:
            return self.p50_ms
        return statistics.quantiles(self.latencies_ms, n=100)[98]


class Reporter(Protocol):
    """Told of each stage as it runs (the live view)."""

    def started(self, stage: str, total: int | None = None) -> None: ...

    def advanced(self, done: int) -> None: ...

    def finished(self, stage: str, figure: str) -> None: ...


class _Quiet:
    def started(self, stage: str, total: int | None = None) -> None:
        pass

    def advanced(self, done: int) -> None:
        pass

    def finished(self, stage: str, figure: str) -> None:
        pass


def run_demo(options: DemoOptions, *, reporter: Reporter | None = None,
             keep_serving: Callable[[str], None] | None = None) -> DemoResult:
    """Run the loop in `options.folder` (new, or empty) and leave the project there.
    `keep_serving(url)`: called at the end with the server still up (`--keep`)."""
    from flywheel.demo.server import DemoServer
    from flywheel.project import Project
    from flywheel.scaffold import init_project
    from flywheel.simulate import simulate_shop

    say = reporter or _Quiet()
    folder = options.folder
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} is not empty",
                         hint="give a new folder with --dir, or remove this one")
    result = DemoResult(folder=folder)
    clock = _Stopwatch(result.seconds)

    with clock("project"):
        say.started("project")
        init_project(folder, example="shop")
        project = Project.open(folder)
        project.apply()
        say.finished("project", f"{folder} (the shop example), applied")
    try:
        server = DemoServer(project=folder, log=project.state_dir / "demo-server.log")
        with server:
            _loop(options, project, server.url, result, say, clock, simulate_shop)
            if keep_serving is not None:
                keep_serving(server.url)
    finally:
        project.close()
    return result


def _loop(options: DemoOptions, project: Any, url: str, result: DemoResult, say: Reporter,
          clock: _Stopwatch, simulate: Any) -> None:
    from flywheel.log.views import bad_row_counts
    from flywheel.simulate import post_events

    # On a monitor window's boundary (6 h), so the drift starts with a window.
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    now -= dt.timedelta(hours=now.hour % 6)
    start = now - dt.timedelta(days=options.days)
    live_from = start + dt.timedelta(days=options.days - LIVE_DAYS)
    result.drift_day = start + dt.timedelta(days=options.days - 1)

    with clock("simulate"):
        say.started("simulate")
        events = list(simulate(days=options.days, seed=options.seed, start=start,
                               users=options.users, products=options.products,
                               drift_from_day=options.days - 1,
                               malformed_share=options.malformed_share))
        result.events = len(events)
        cut = next((i for i, e in enumerate(events) if _time(e) >= live_from), len(events))
        history, live = events[:cut], events[cut:]
        kinds = Counter(e["schema"].split("/")[1] for e in events)
        say.finished("simulate", f"{len(events):,} events over {options.days} days "
                     f"({', '.join(f'{n:,} {k}' for k, n in kinds.most_common())}); "
                     f"drift from {result.drift_day:%a %H:%M}")

    with httpx.Client(base_url=url, timeout=60) as http:
        with clock("ingest"):
            say.started("ingest", len(history))
            posted = post_events(history, url, on_progress=say.advanced)
            result.accepted += posted.accepted
            result.bad_rows = _reasons(bad_row_counts(project.log_store))
            bad = ", ".join(f"{n:,} {reason}" for reason, n in result.bad_rows.items())
            say.finished("ingest", f"{posted.accepted:,} accepted through POST /v1/events; "
                         f"bad rows: {bad or 'none'}")

        with clock("train"):
            say.started("train")
            project.transform()
            project.features.materialize()
            run = project.run("pipelines/train.yaml")
            result.auc, result.baseline_auc = run.output("auc"), run.output("baseline_auc")
            result.runs.append(run.id)
            version = project.registry.register(MODEL, run_id=run.id)
            for alias in ("champion", "challenger"):
                project.registry.set_alias(MODEL, alias, version=version.version,
                                           reason="flywheel demo: the first model")
            shutil.copytree(project.root / "live", project.root, dirs_exist_ok=True)
            project.apply()
            say.finished("train", f"LightGBM AUC {result.auc:.3f} against the baseline's "
                         f"{result.baseline_auc:.3f} on held-out days; registered "
                         f"{MODEL} v{version.version} as champion")

        with clock("serve"):
            steps = list(_steps(live, live_from))
            carts = sum(len(_cart_adds(chunk)) for chunk in steps)
            say.started("serve", carts)
            sent_feedback: set[str] = set()
            for chunk in steps:
                project.transform()
                project.features.materialize()
                _send_feedback(http, project, sent_feedback, result)
                _predict(http, _cart_adds(chunk), result)
                say.advanced(result.predictions)
                result.accepted += post_events(chunk, url).accepted
            _wait_logged(project, result.predictions)
            project.transform()
            _send_feedback(http, project, sent_feedback, result)
            _wait_feedback(project, result.feedback)
            project.transform()
            p50, p99 = result.p50_ms or 0.0, result.p99_ms or 0.0
            say.finished("serve", f"{result.predictions:,} predictions (p50 {p50:.1f} ms, "
                         f"p99 {p99:.1f} ms), {result.feedback:,} outcomes through "
                         "POST /v1/feedback")

        with clock("monitor"):
            say.started("monitor")
            project.run_monitors()
            report = project.monitor_report()
            result.report = report.write_html(project.root / REPORT)
            _drift(project, result)
            result.alerts = len(project.alerts.list(limit=1000))
            decisions = project.alerts.decisions(policy=POLICY, limit=1)
            result.decision = decisions[0] if decisions else None
            if result.decision is not None and result.decision.run_id:
                result.runs.append(result.decision.run_id)
            found = (f"drift from {result.drift_windows[0]:%a %H:%M} "
                     f"({', '.join(result.drifted_columns)})" if result.drift_windows
                     else "no drift found")
            say.finished("monitor", f"{found}; {result.alerts} alert(s)")
            if result.decision is not None:
                say.finished("retrain", f"{result.decision.outcome}: {result.decision.reason}")
        result.rows = {name: _rows(project, name) for name in TABLES}
        result.bad_rows = _reasons(bad_row_counts(project.log_store))


# Steps ------------------------------------------------------------------------------------
def _time(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(event["event_time"]))


def _steps(events: Sequence[dict[str, Any]], start: dt.datetime,
           ) -> Iterator[list[dict[str, Any]]]:
    """The events of each `STEP` from `start` (an empty list for a quiet step)."""
    step_end, chunk = start + STEP, list[dict[str, Any]]()
    for event in events:
        while _time(event) >= step_end:
            yield chunk
            step_end, chunk = step_end + STEP, []
        chunk.append(event)
    if chunk:
        yield chunk


def _cart_adds(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The well-formed cart adds: the moments the product asks the model."""
    found = []
    for event in events:
        data = event.get("data")
        if "/add_to_cart/jsonschema/1-0-0" in str(event.get("schema")) and \
                isinstance(data, dict) and isinstance(data.get("user_id"), str) and \
                isinstance(data.get("product_id"), str):
            found.append(event)
    return found


# HTTP -------------------------------------------------------------------------------------
def _predict(http: httpx.Client, carts: Sequence[dict[str, Any]], result: DemoResult) -> None:
    for cart in carts:
        data = cart["data"]
        began = time.perf_counter()
        answer = http.post(f"/v1/models/{DEPLOYMENT}/predict", json={
            "entities": {"user_id": [data["user_id"]], "product_id": [data["product_id"]]},
            "time": str(cart["event_time"])})
        result.latencies_ms.append((time.perf_counter() - began) * 1000)
        _check(answer, "predict")
        result.predictions += len(answer.json()["predictions"])


def _send_feedback(http: httpx.Client, project: Any, sent: set[str],
                   result: DemoResult) -> None:
    """Outcomes the shop's own events decided (a purchase within 30 minutes, or none),
    sent as a product would send them: one `POST /v1/feedback` each."""
    handle = project.tables.handle("purchase_feedback")
    if not handle.exists():
        return
    rows = handle.read(columns=["prediction_id", "outcome", "event_time"]).to_pylist()
    for row in rows:
        if row["prediction_id"] in sent:
            continue
        answer = http.post("/v1/feedback", json={
            "prediction_id": row["prediction_id"], "outcome": row["outcome"],
            "time": row["event_time"].astimezone(dt.UTC).isoformat()})
        _check(answer, "POST /v1/feedback")
        sent.add(row["prediction_id"])
        result.feedback += 1


def _check(answer: httpx.Response, what: str) -> None:
    if answer.status_code >= 400:
        raise FlywheelError(f"{what} answered {answer.status_code}: {answer.text[:300]}")


# Reading back -----------------------------------------------------------------------------
def _wait_logged(project: Any, predictions: int, timeout: float = 60.0) -> None:
    """Until the server's group commits hold every prediction it answered."""
    from flywheel.serving.events import PREDICTION_TABLE

    _wait(lambda: _count(project, PREDICTION_TABLE, answered_only=True) >= predictions, timeout,
          f"the server logged fewer than the {predictions:,} predictions it answered")


def _wait_feedback(project: Any, feedback: int, timeout: float = 60.0) -> None:
    from flywheel.serving.events import FEEDBACK_TABLE

    _wait(lambda: _count(project, FEEDBACK_TABLE, answered_only=False) >= feedback, timeout,
          f"the server logged fewer than the {feedback:,} outcomes it accepted")


def _wait(done: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise FlywheelError(why)
        time.sleep(0.1)


def _count(project: Any, table: Any, answered_only: bool) -> int:
    """Rows of a log table (`answered_only`: predictions that answered, not shadows)."""
    import pyarrow.compute as pc

    handle = project.log_store.handle(table)
    if not handle.exists():
        return 0
    where = ~pc.field("shadow") if answered_only else None
    return int(handle.dataset().count_rows(filter=where))


def _rows(project: Any, name: str) -> int:
    handle = project.tables.handle(name)
    return int(handle.dataset().count_rows()) if handle.exists() else 0


def _reasons(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    found: Counter[str] = Counter()
    for (_, reason), count in counts.items():
        found[reason] += count
    return dict(found.most_common())


def _drift(project: Any, result: DemoResult) -> None:
    red = [r for r in project.monitor_runner(alerts=False).results(DRIFT_MONITOR)
           if r.status == "red"]
    result.drift_windows = sorted({r.window_start for r in red if r.subject == "dataset"})
    result.drifted_columns = sorted({r.subject for r in red if r.subject != "dataset"})


class _Stopwatch:
    def __init__(self, seconds: dict[str, float]) -> None:
        self._seconds = seconds

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + time.perf_counter() - began
