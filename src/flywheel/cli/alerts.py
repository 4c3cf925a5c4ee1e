"""`flywheel monitor alerts`: what monitors set off, when, and what became of it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.output import note, print_json, print_table, shorten

if TYPE_CHECKING:
    from flywheel._core.metadata.alerts import AlertRecord

ALERTS_EPILOG = ("flywheel monitor alerts", "flywheel monitor alerts --monitor purchase_drift",
                 "flywheel monitor alerts --since 1d --json")
DETAIL_WIDTH = 80
"""Characters of an alert's detail shown in the table (--json has all of it)."""


def alerts_command(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option(
        "--monitor", "-m", metavar="NAME", help="Only this monitor's alerts.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="WHEN", help="Fired at or after this time (ISO 8601), or within "
        "this duration back from now (1d, 12h, 30m).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many, newest "
                                       "first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per alert, in a "
                                          "list.")] = False,
) -> None:
    """Alerts, newest first: when, which monitor and subject, the value against its
    threshold, the action, and whether it was delivered, suppressed or failed."""
    with open_project(ctx) as project:
        alerts = project.alerts.list(monitor=monitor, since=since, limit=limit)
    if as_json:
        print_json([dataclasses.asdict(alert) for alert in alerts])
        return
    if not alerts:
        note("no alerts" + (f" of monitor {monitor}" if monitor else "")
             + (f" since {since}" if since else ""))
        return
    print_table(["id", "when", "monitor", "subject", "window", "value vs threshold",
                 "action", "outcome", "detail"], [_row(alert) for alert in alerts])


def _row(alert: AlertRecord) -> tuple[Any, ...]:
    window = f"{alert.window_start:%Y-%m-%d %H:%M}–{alert.window_end:%Y-%m-%d %H:%M}"
    outcome = alert.outcome if alert.attempts <= 1 else \
        f"{alert.outcome} ({alert.attempts} attempts)"
    return (alert.id, alert.fired_at, alert.monitor, alert.subject, window,
            _versus(alert), alert.action, outcome, shorten(alert.detail, DETAIL_WIDTH) or None)


def _versus(alert: AlertRecord) -> str | None:
    if alert.value is None and alert.threshold is None:
        return None
    shown = "-" if alert.value is None else f"{alert.value:.4g}"
    limit = "" if alert.threshold is None else f" vs {alert.threshold:.4g}"
    return f"{alert.statistic} {shown}{limit}"
