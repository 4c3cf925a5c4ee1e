"""`flywheel demo`: the whole loop on the shop example, with a live view and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.groups import epilog
from flywheel.cli.output import err, out, print_json

if TYPE_CHECKING:
    from flywheel.demo.loop import DemoResult

__all__ = ["EPILOG", "STAGES", "demo_command", "register"]

EPILOG = epilog("flywheel demo", "flywheel demo --dir shop-demo --days 8 --seed 3",
                "flywheel demo --keep   [dim]# and leave the server running[/dim]")
STAGES = {"project": "project", "simulate": "simulate", "ingest": "ingest",
          "train": "train", "serve": "live traffic", "monitor": "monitor",
          "retrain": "retrain"}


def demo_command(
    folder: Annotated[Path, typer.Option(
        "--dir", metavar="DIR", help="Where the project is made and left (new or empty).")
    ] = Path("flywheel-demo"),
    days: Annotated[int, typer.Option(
        "--days", help="Days of simulated shop traffic; the last 2 are served live and the "
        "last one drifts.")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="The same seed, the same shop.")] = 7,
    keep: Annotated[bool, typer.Option(
        "--keep", help="Leave the server running at the end (Ctrl-C stops it).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON.")] = False,
) -> None:
    """Run the whole loop on a simulated shop, with nothing to install or start.

    Makes the shop example in --dir, serves it (`flywheel serve`, in its own process),
    sends days of simulated traffic to the collector (the malformed events end in bad
    rows), builds the transforms and features, trains LightGBM against a baseline and
    registers the model, plays the last two days as live traffic through the model server
    with delayed feedback, monitors drift and live performance, and lets the drift alert
    retrain and decide on a promotion. The project stays in --dir: read it, change it, run
    its commands again.
    """
    from flywheel.demo.loop import DemoOptions, run_demo

    options = DemoOptions(folder=folder.resolve(), days=days, seed=seed)
    view = _LiveView()

    def serve_on(url: str) -> None:
        view.close()
        err().print(f"the server keeps running at {url} (Ctrl-C stops it)")
        import time

        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return

    try:
        result = run_demo(options, reporter=view, keep_serving=serve_on if keep else None)
    finally:
        view.close()
    if as_json:
        print_json(_summary_json(result))
        return
    _print_summary(result)


class _LiveView:
    """One line per stage with its key figure; a bar while a stage counts."""

    def __init__(self) -> None:
        from flywheel.cli.progress import progress_shown

        self._console = err()
        self._shown = progress_shown()
        self._progress: Any = None
        self._task: Any = None
        self._status: Any = None

    def started(self, stage: str, total: int | None = None) -> None:
        self._stop_bar()
        name = STAGES.get(stage, stage)
        if not self._shown:
            return
        if total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(TextColumn(f"  {name:<13}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=self._console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(name, total=total)
        else:
            self._status = self._console.status(f"  {name} …")
            self._status.start()

    def advanced(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done)

    def finished(self, stage: str, figure: str) -> None:
        self._stop_bar()
        self._console.print(f"[green]✓[/green] {STAGES.get(stage, stage):<13} {figure}",
                            highlight=False, soft_wrap=True)

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        self._stop_bar()


def _figures(result: DemoResult) -> list[tuple[str, str]]:
    bad = ", ".join(f"{n:,} {reason}" for reason, n in result.bad_rows.items()) or "none"
    rows = ", ".join(f"{name} {n:,}" for name, n in result.rows.items())
    decision = result.decision
    drift = (f"from {result.drift_windows[0]:%Y-%m-%d %H:%M} UTC (drift injected from "
             f"{result.drift_day:%Y-%m-%d %H:%M}): {', '.join(result.drifted_columns)}"
             if result.drift_windows and result.drift_day else "none found")
    return [
        ("events", f"{result.events:,} simulated, {result.accepted:,} accepted"),
        ("bad rows", bad),
        ("tables", rows),
        ("model", f"LightGBM AUC {result.auc:.3f}, baseline {result.baseline_auc:.3f} "
                  "(held-out days)" if result.auc is not None and
                  result.baseline_auc is not None else "-"),
        ("served", f"{result.predictions:,} predictions, p50 {result.p50_ms or 0:.1f} ms, "
                   f"p99 {result.p99_ms or 0:.1f} ms; {result.feedback:,} outcomes"),
        ("drift", drift),
        ("alerts", f"{result.alerts}"),
        ("retraining", f"{decision.outcome}: {decision.reason}" if decision is not None
         else "not started"),
        ("report", str(result.report or "-")),
        ("time", ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())),
    ]


def _print_summary(result: DemoResult) -> None:
    from rich.table import Table

    table = Table(title="flywheel demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, figure in _figures(result):
        table.add_row(name, figure)
    console = out()
    console.print(table)
    console.print(f"\nThe project is in {result.folder}. Explore it:", markup=False)
    for line in (f"cd {result.folder}",
                 "flywheel serve                       # the collector and the model server",
                 f"flywheel runs compare {' '.join(r[:8] for r in result.runs)}"
                 "   # the training runs side by side",
                 "flywheel models show purchase        # versions, aliases, the audit trail",
                 "flywheel monitor report              # what is red, since when",
                 "flywheel monitor alerts"):
        console.print(f"  {line}", markup=False, soft_wrap=True)


def _summary_json(result: DemoResult) -> dict[str, Any]:
    decision = result.decision
    return {
        "folder": str(result.folder), "events": result.events, "accepted": result.accepted,
        "bad_rows": result.bad_rows, "rows": result.rows, "auc": result.auc,
        "baseline_auc": result.baseline_auc, "predictions": result.predictions,
        "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "feedback": result.feedback,
        "drift_day": result.drift_day.isoformat() if result.drift_day else None,
        "drift_windows": [w.isoformat() for w in result.drift_windows],
        "drifted_columns": result.drifted_columns, "alerts": result.alerts,
        "decision": None if decision is None else {
            "outcome": decision.outcome, "reason": decision.reason, "metric": decision.metric,
            "champion": decision.champion_value, "challenger": decision.challenger_value,
            "rows": decision.rows},
        "report": str(result.report) if result.report else None, "runs": result.runs,
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }


def register(app: typer.Typer) -> None:
    app.command("demo", epilog=EPILOG)(demo_command)
