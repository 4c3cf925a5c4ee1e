"""Alert history: each alert claimed once, what became of it, and retraining decisions.

An alert is keyed by (monitor, action, window start, subject): the claim is the one insert
of that key, so two processes evaluating the same window fire once. The claim also decides,
in the same transaction, whether the action's cooldown suppresses it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

AlertOutcome = Literal["sending", "delivered", "failed", "suppressed"]
ALERT_OUTCOMES: tuple[AlertOutcome, ...] = ("sending", "delivered", "failed", "suppressed")
"""`sending`: claimed, its delivery not finished (or its process died in it: an alert is
delivered at most once, never twice)."""
DecisionOutcome = Literal["promoted", "challenger", "rejected", "failed"]
DECISION_OUTCOMES: tuple[DecisionOutcome, ...] = ("promoted", "challenger", "rejected", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord:
    """One alert: a red result of a monitor, for one action."""

    monitor: str
    action: str
    window_start: dt.datetime
    window_end: dt.datetime
    subject: str
    kind: str
    """The monitor's kind (`drift`, `quality`, `performance`), or `schedule`."""
    statistic: str
    value: float | None
    threshold: float | None
    status: str
    fired_at: dt.datetime
    outcome: AlertOutcome = "sending"
    detail: str = ""
    """Why it failed or was suppressed, or what the action answered."""
    attempts: int = 0
    id: int | None = None
    """Allocated by the claim."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrainingDecision:
    """What a retraining policy decided, with the figures it decided on."""

    policy: str
    model: str
    alert_id: int | None
    run_id: str | None
    champion_version: int | None
    challenger_version: int | None
    metric: str
    champion_value: float | None
    challenger_value: float | None
    rows: int
    outcome: DecisionOutcome
    reason: str
    decided_at: dt.datetime
    id: int | None = None


class AlertStore(Protocol):
    def claim_alert(self, record: AlertRecord, *, quiet_since: dt.datetime) -> AlertRecord | None:
        """Store `record` unless an alert of its key (monitor, action, window start,
        subject) was stored before: then None. A new alert is `suppressed` when another
        alert of the same monitor and action that was not suppressed fired after
        `quiet_since`, else `sending` with one attempt. Atomic under concurrent callers."""

    def claim_retry(self, alert_id: int, *, attempts: int) -> bool:
        """Take a `failed` alert that has made `attempts` attempts for one more (it becomes
        `sending`); False when it is not in that state any more (another caller took it)."""

    def finish_alert(self, alert_id: int, outcome: AlertOutcome, detail: str) -> None:
        """Record how a delivery ended."""

    def alerts(self, *, monitor: str | None = None, action: str | None = None,
               since: dt.datetime | None = None, outcome: AlertOutcome | None = None,
               limit: int = 1000) -> list[AlertRecord]:
        """Alerts, newest first (by when they fired, then id)."""

    def add_decision(self, record: RetrainingDecision) -> RetrainingDecision:
        """Keep a decision; returns it with its id."""

    def decisions(self, *, policy: str | None = None, limit: int = 1000,
                  ) -> list[RetrainingDecision]:
        """Decisions, newest first."""
