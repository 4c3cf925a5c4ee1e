"""Alerts: what a red monitor result sets off, once.

For each red result of a window evaluated for the first time, every action the monitor
names is claimed in metadata under (monitor, action, window start, subject): a key is
claimed once ever, across processes and restarts, so an alert never fires twice. The
claim also applies the action's cooldown: within it, further alerts of the same monitor
and action are kept as `suppressed` (and counted in the next alert's body) instead of
firing. A delivery that fails (refused, HTTP 5xx, timed out, a command's non-zero exit) is
kept as `failed` with its reason and tried again on the next dispatch, up to
`max_attempts` in all; nothing here raises into the monitor run. A retraining policy's name
among the actions starts that policy, under its own cooldown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from flywheel._core.clock import utc_now
from flywheel._core.metadata.alerts import AlertOutcome, AlertRecord, AlertStore
from flywheel._core.text import first_line
from flywheel.monitoring.delivery import LOGGER, Delivery, alert_payload, deliver
from flywheel.monitoring.policy import ActionSpec, RetrainingSpec
from flywheel.monitoring.results import MonitorResult

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_ATTEMPTS", "SCHEDULE", "Alerts", "DispatchReport", "MonitorNames",
           "Retrain"]

DEFAULT_ATTEMPTS = 3
"""Deliveries of one alert at most: the first and two retries."""
SCHEDULE = "schedule"
"""The monitor (and kind) of the alerts that scheduled retrainings claim."""

Retrain = Callable[[RetrainingSpec, AlertRecord], Delivery]
"""Runs a retraining policy for an alert; says how it ended (see `retraining.Retrainer`)."""


class MonitorNames(Protocol):
    """What alerts need of a monitor's spec."""

    @property
    def name(self) -> str: ...

    @property
    def actions(self) -> tuple[str, ...]: ...


@dataclass(slots=True)
class DispatchReport:
    """What one dispatch did, counted by outcome."""

    delivered: list[AlertRecord] = field(default_factory=list)
    failed: list[AlertRecord] = field(default_factory=list)
    suppressed: list[AlertRecord] = field(default_factory=list)
    duplicates: int = 0
    """Alerts already claimed (by an earlier evaluation or another process)."""
    retried: int = 0
    unknown_actions: list[str] = field(default_factory=list)


class Alerts:
    """The sink of monitor results: `alerts(monitor, new_results)` after each evaluation."""

    def __init__(self, *, store: AlertStore, actions: Mapping[str, ActionSpec],
                 retraining: Mapping[str, RetrainingSpec] | None = None,
                 retrain: Retrain | None = None, clock: Callable[[], dt.datetime] = utc_now,
                 max_attempts: int = DEFAULT_ATTEMPTS, client: httpx.Client | None = None,
                 ) -> None:
        self._store = store
        self._actions = dict(actions)
        self._retraining = dict(retraining or {})
        self._retrain = retrain
        self._clock = clock
        self._max_attempts = max_attempts
        self._client = client

    def __call__(self, monitor: MonitorNames, new_results: Sequence[MonitorResult]) -> None:
        self.dispatch(monitor.name, monitor.actions, new_results)

    def dispatch(self, monitor: str, actions: Sequence[str],
                 new_results: Sequence[MonitorResult]) -> DispatchReport:
        """Retry this monitor's failed alerts, then fire each action for each red result."""
        report = DispatchReport()
        report.unknown_actions = [a for a in actions if not self._known(a)]
        for name in report.unknown_actions:
            LOGGER.warning("monitor %s names action %s, which is neither an action nor a "
                           "retraining policy; skipped", monitor, name)
        self._retry(monitor, report)
        for result in _red_in_order(new_results):
            for action in actions:
                if self._known(action):
                    self._fire(_record(monitor, action, result, self._clock()), report)
        return report

    def run_schedules(self) -> DispatchReport:
        """Start each retraining policy with a `schedule` once per period of it (periods
        counted from the epoch, claimed like alerts: once, whichever process asks); a
        scheduled retraining that failed is tried again first, as alerts are."""
        report = DispatchReport()
        self._retry(SCHEDULE, report)
        now = self._clock()
        for name, spec in self._retraining.items():
            if spec.schedule is None:
                continue
            start = _period_start(now, spec.schedule)
            record = AlertRecord(monitor=SCHEDULE, action=name, window_start=start,
                                 window_end=start + spec.schedule, subject=SCHEDULE,
                                 kind=SCHEDULE, statistic=SCHEDULE, value=None,
                                 threshold=None, status="due", fired_at=now)
            self._fire(record, report)
        return report

    def _known(self, action: str) -> bool:
        return action in self._actions or action in self._retraining

    def _cooldown(self, action: str) -> dt.timedelta:
        spec = self._actions.get(action)
        return spec.cooldown if spec is not None else self._retraining[action].cooldown

    def _fire(self, record: AlertRecord, report: DispatchReport) -> None:
        claimed = self._store.claim_alert(
            record, quiet_since=record.fired_at - self._cooldown(record.action))
        if claimed is None:
            report.duplicates += 1
        elif claimed.outcome == "suppressed":
            report.suppressed.append(claimed)
        else:
            self._deliver(claimed, report)

    def _retry(self, monitor: str, report: DispatchReport) -> None:
        for failed in reversed(self._store.alerts(monitor=monitor, outcome="failed")):
            if failed.attempts >= self._max_attempts or not self._known(failed.action):
                continue
            assert failed.id is not None
            if self._store.claim_retry(failed.id, attempts=failed.attempts):
                report.retried += 1
                self._deliver(dataclasses.replace(failed, attempts=failed.attempts + 1,
                                                  outcome="sending"), report)

    def _deliver(self, alert: AlertRecord, report: DispatchReport) -> None:
        assert alert.id is not None
        try:
            delivery = self._run(alert)
        except Exception as exc:  # a bug in an action must not end the monitor run
            delivery = Delivery(ok=False, detail=f"{type(exc).__name__}: {first_line(exc)}")
        outcome: AlertOutcome = "delivered" if delivery.ok else "failed"
        self._store.finish_alert(alert.id, outcome, delivery.detail)
        done = dataclasses.replace(alert, outcome=outcome, detail=delivery.detail)
        (report.delivered if delivery.ok else report.failed).append(done)
        if not delivery.ok:
            left = self._max_attempts - alert.attempts
            LOGGER.warning("alert %s (%s → %s) failed: %s%s", alert.id, alert.monitor,
                           alert.action, delivery.detail,
                           f"; {left} more attempt(s)" if left > 0 else "; giving up")

    def _run(self, alert: AlertRecord) -> Delivery:
        policy = self._retraining.get(alert.action)
        if policy is not None and alert.action not in self._actions:
            if self._retrain is None:
                return Delivery(ok=False, detail="retraining is not available here")
            return self._retrain(policy, alert)
        payload = alert_payload(alert, suppressed=self._suppressed_before(alert))
        return deliver(self._actions[alert.action], payload, client=self._client)

    def _suppressed_before(self, alert: AlertRecord) -> int:
        """Alerts of this monitor and action suppressed since the last one that fired."""
        count = 0
        for earlier in self._store.alerts(monitor=alert.monitor, action=alert.action,
                                          limit=1000):
            if earlier.id is None or alert.id is None or earlier.id >= alert.id:
                continue  # itself, or claimed after it
            if earlier.outcome != "suppressed":
                break
            count += 1
        return count


def _red_in_order(results: Iterable[MonitorResult]) -> list[MonitorResult]:
    """Red results by window, a drift monitor's `dataset` row before its columns: when the
    cooldown lets one alert of a window through, it is the one about the whole window."""
    return sorted((r for r in results if r.red),
                  key=lambda r: (r.window_start, r.subject != "dataset", r.subject))


def _record(monitor: str, action: str, result: MonitorResult, now: dt.datetime) -> AlertRecord:
    return AlertRecord(monitor=monitor, action=action, window_start=result.window_start,
                       window_end=result.window_end, subject=result.subject,
                       kind=result.kind, statistic=result.statistic, value=result.value,
                       threshold=result.threshold, status=result.status, fired_at=now)


def _period_start(now: dt.datetime, period: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + ((now - epoch) // period) * period
