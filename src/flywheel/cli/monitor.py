"""`flywheel monitor run|report|alerts`: evaluate monitors, look at what they found, and at
what they set off."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flywheel.cli import alerts
from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import err, note, out, print_json, print_table
from flywheel.cli.progress import live_lines

if TYPE_CHECKING:
    from flywheel.monitoring.runner import MonitorEvaluation

RUN_EPILOG = ("flywheel monitor run", "flywheel monitor run purchase_drift --json",
              "flywheel monitor run --every 10m")
REPORT_EPILOG = ("flywheel monitor report", "flywheel monitor report --out report.html",
                 "flywheel monitor report --json")
DEFAULT_REPORT = "monitoring-report.html"

monitor_app = command_group(
    "monitor", help="Monitors: data quality, drift and live performance, their reports and "
    "their alerts. Declared in monitors.yaml; results are kept as rows of a table per "
    "monitor (`monitor_<name>`), rebuilt identically by `flywheel replay`.",
    short_help="Monitors, reports and alerts.", examples=RUN_EPILOG + REPORT_EPILOG[:1])

Names = Annotated[list[str] | None, typer.Argument(
    metavar="NAME", help="Monitors (default: every monitor of monitors.yaml).")]


@monitor_app.command("run", epilog=epilog(*RUN_EPILOG, note="Only complete windows are "
                     "evaluated (their end at or before the newest event in the log); red "
                     "results set off the monitor's actions once per window."))
def run_command(
    ctx: typer.Context, names: Names = None,
    every: Annotated[str | None, typer.Option(
        "--every", metavar="DURATION", help="Keep evaluating, this often (10m, 1h); Ctrl-C "
        "stops.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild every window, not only new "
                                       "ones.")] = False,
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Evaluate without setting "
                                            "off actions.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The new results as JSON.")] = False,
) -> None:
    """Evaluate monitors once (or --every DURATION): the windows they have not kept yet."""
    period = _period(every)
    with open_project(ctx) as project:
        while True:
            with live_lines() as lines:
                def done(e: MonitorEvaluation) -> None:
                    lines.finish(e.monitor, _line(e))

                evaluations = project.run_monitors(names or None, full=full,
                                                   alerts=not no_alerts,
                                                   on_start=lines.start, on_done=done)
            _show(evaluations, as_json)
            if period is None:
                return
            time.sleep(period)


@monitor_app.command("report", epilog=epilog(*REPORT_EPILOG, note="The HTML file needs "
                     "nothing else: no network, no script."))
def report_command(
    ctx: typer.Context, names: Names = None,
    output: Annotated[Path, typer.Option("--out", "-o", metavar="FILE",
                                         help="Where to write the HTML report.")
                      ] = Path(DEFAULT_REPORT),
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON (no HTML).")
                       ] = False,
) -> None:
    """What is red, since when and by how much; and an HTML report with the plots."""
    with open_project(ctx) as project:
        report = project.monitor_report(names or None)
    if as_json:
        print_json(report.to_json())
        return
    report.render(out())
    written = report.write_html(output)
    err().print(f"report written to {written}")


def _period(every: str | None) -> float | None:
    if every is None:
        return None
    from flywheel.features.definitions import parse_duration

    try:
        seconds = parse_duration(every).total_seconds()
    except (ValueError, TypeError):
        seconds = 0.0
    if seconds <= 0:
        raise typer.BadParameter(f"{every!r} is not a duration such as 30s, 10m or 1h",
                                 param_hint="--every")
    return seconds


def _line(e: MonitorEvaluation) -> str:
    red = len(e.red)
    colour = "red" if red else "green"
    return (f"{e.monitor}: {e.mode}, {e.windows} window(s)" +
            (f", [{colour}]{red} red[/{colour}]" if e.windows else ""))


def _show(evaluations: list[MonitorEvaluation], as_json: bool) -> None:
    if as_json:
        print_json([{"monitor": e.monitor, "kind": e.kind, "mode": e.mode,
                     "windows": e.windows, "version": e.version, "horizon": e.horizon,
                     "seconds": round(e.seconds, 3),
                     "results": [_result(r) for r in e.results]} for e in evaluations])
        return
    if not evaluations:
        note("no monitors: declare them in monitors.yaml")
        return
    print_table(["monitor", "kind", "mode", "windows", "red", "horizon", "seconds"],
                [(e.monitor, e.kind, e.mode, e.windows, len(e.red), e.horizon or "-",
                  f"{e.seconds:.2f}") for e in evaluations])


def _result(result: object) -> dict[str, object]:
    import dataclasses

    found = dataclasses.asdict(result)  # type: ignore[call-overload]
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in found.items()}


def register(root: typer.Typer) -> None:
    monitor_app.command("alerts", epilog=epilog(*alerts.ALERTS_EPILOG))(alerts.alerts_command)
    add_group(root, monitor_app)
