"""`flywheel run PIPELINE.yaml`: run a pipeline with a live line per step, then a summary.

Exit codes: 0 when every step succeeded, 2 for bad input (the spec, a param, a missing
step input: nothing ran), 1 when a step failed (the run is recorded; resume it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import epilog
from flywheel.cli.output import human_bytes, note, print_table
from flywheel.cli.progress import live_lines

if TYPE_CHECKING:

    from flywheel.pipelines.state import StepRecord

DIGEST_WIDTH = 12
CACHE = {"ran": "miss", "cached": "hit", "reused": "reused", "failed": "miss"}


def run_command(
    ctx: typer.Context,
    spec: Annotated[Path | None, typer.Argument(
        metavar="PIPELINE.yaml", show_default=False,
        help="The run spec: pipeline, params, training data, resources, executor.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-P", metavar="KEY=VALUE",
        help="Set a param (repeatable). Values are typed: 3, 0.5, true, null, [1, 2], "
        "{\"a\": 1}; anything else is text.")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Run every step, even those whose cached output is valid.")
    ] = False,
    resume: Annotated[str | None, typer.Option(
        "--resume", metavar="RUN_ID",
        help="Resume a failed run: reuse the steps that succeeded, run the rest.")] = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", metavar="NAME",
        help="inprocess (the default) or process (each step in its own process).")] = None,
) -> None:
    """Run a pipeline: cached steps are skipped, every run is recorded."""
    from flywheel.pipelines import PipelineError, StepFailedError
    from flywheel.pipelines.params import parse_params

    params = parse_params(param or [])
    if spec is None and resume is None:
        raise PipelineError("give a run spec, or --resume RUN_ID",
                            hint="flywheel run pipelines/train.yaml")
    records: list[StepRecord] = []
    began = time.perf_counter()
    with open_project(ctx) as project, live_lines() as lines:
        def done(record: StepRecord) -> None:
            records.append(record)
            lines.finish(record.name, _done_text(record))

        try:
            result = project.run(spec.resolve() if spec else None, params=params,
                                 cache=not no_cache, resume=resume, executor=executor,
                                 on_start=lambda name: lines.start(name, f"{name}: running"),
                                 on_done=done)
        except StepFailedError as exc:
            lines.close()
            if exc.run is not None:
                _summary(records, exc.run.steps)
            sys.stderr.write(f"error: {exc.one_line()}\n")
            raise typer.Exit(1) from None
    _summary(records, result.steps)
    counts = ", ".join(f"{n} {s}" for s, n in _counts(result.steps).items())
    note(f"run {result.id} finished: {len(result.steps)} steps ({counts}) in "
         f"{time.perf_counter() - began:.1f}s")


def _counts(steps: list[StepRecord]) -> dict[str, int]:
    found: dict[str, int] = {}
    for record in steps:
        found[record.status] = found.get(record.status, 0) + 1
    return found


def _summary(seen: list[StepRecord], steps: list[StepRecord]) -> None:
    """One row per step (and the training set, when fetched) in run order."""
    names = {s.name for s in steps}
    extra = [r for r in seen if r.name not in names]
    rows = [_row(r) for r in [*extra, *steps]]
    print_table(["step", "status", "cache", "time", "output", "digest"], rows)


def _row(record: StepRecord) -> tuple[Any, ...]:
    output = record.output
    shown = f"{output.kind}, {human_bytes(output.size)}" if output else None
    status = record.status if record.status != "pending" else "not run"
    took = _duration(record.seconds) if record.status != "pending" else None
    return (record.name, status, CACHE.get(record.status), took, shown,
            output.digest[:DIGEST_WIDTH] if output else None)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _done_text(record: StepRecord) -> str:
    text = {"ran": "ran", "cached": "cached", "reused": "reused from the resumed run",
            "failed": f"[red]failed[/red]: {record.error}"}.get(record.status, record.status)
    return f"{record.name}: {text} ({_duration(record.seconds)})"


def register(root: typer.Typer) -> None:
    root.command("run", short_help="Run a pipeline, skipping cached steps.", epilog=epilog(
        "flywheel run pipelines/train.yaml",
        "flywheel run pipelines/train.yaml --param learning_rate=0.05 --param epochs=20",
        "flywheel run pipelines/train.yaml --no-cache --executor process",
        "flywheel run --resume 3f2a9c01 --param epochs=30",
        note="A step is skipped when its code, params, inputs and the table versions it "
        "read are unchanged. --resume reuses the steps that succeeded in that run; params "
        "may change only for the failed step and those after it. Exit code 2: bad input, "
        "nothing ran; 1: a step failed (the message names the run to resume)."))(run_command)
