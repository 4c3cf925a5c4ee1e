"""`flywheel runs list|show|compare`: tracked runs as readable tables."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import cell_text, human_bytes, jsonable, note, out, print_table

if TYPE_CHECKING:
    from flywheel.tracking import RunInfo

runs_app = command_group(
    "runs", help="Tracked runs: list and search them, show one, compare several.",
    short_help="Tracked runs: list, show, compare.",
    examples=("flywheel runs list --order-by 'metrics.auc desc'", "flywheel runs show 3f9c2a1b",
              "flywheel runs compare 3f9c2a1b 77d0e4c2"))

SHORT_ID = 8


@runs_app.command("list", epilog=epilog(
    "flywheel runs list", "flywheel runs list --name train --status finished",
    "flywheel runs list -w 'params.model = lgbm' -w 'metrics.auc >= 0.8' "
    "--order-by 'metrics.auc desc' --limit 5",
    note="Conditions: params.KEY and tags.KEY compare text with = or !=; metrics.KEY "
    "compares the latest value with = != < <= > >=. Runs are newest first unless "
    "--order-by names a metric; runs without it come last."))
def list_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only runs of this name.")
                    ] = None,
    status: Annotated[str | None, typer.Option(
        "--status", "-s", help="running, finished or failed.")] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", "-w", metavar="COND", show_default=False,
        help="A condition such as 'metrics.auc >= 0.8'; repeatable (all must hold).")] = None,
    order_by: Annotated[str | None, typer.Option(
        "--order-by", "-o", metavar="metrics.KEY [asc|desc]",
        help="Order by a metric's latest value.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.")] = 20,
    steps: Annotated[bool, typer.Option(
        "--steps", help="Also list the runs of pipeline steps (hidden by default).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Runs matching every condition, newest first or by a metric."""
    from flywheel.tracking import parse_order

    with open_project(ctx) as project:
        runs = project.runs.search(name=name, status=status, where=where or (),
                                   order_by=order_by, limit=limit, top_level=not steps)
    if as_json:
        for run in runs:
            sys.stdout.write(json.dumps(_as_dict(run), default=jsonable) + "\n")
        return
    if not runs:
        note("no runs match" if (name or status or where) else
             "no runs yet; start one with `project.start_run(name)` or `flywheel run`")
        return
    metric = parse_order(order_by)[0] if order_by else None
    columns = ["run", "name", "status", "started", "seconds", "params", "metrics"]
    rows: list[list[Any]] = []
    for run in runs:
        row = [run.id[:SHORT_ID], run.name, run.status, run.started_at,
               None if run.seconds is None else round(run.seconds, 1),
               _pairs(run.params), _pairs({k: number(v) for k, v in run.metrics.items()})]
        if metric is not None:
            row.insert(3, number(run.metrics[metric]) if metric in run.metrics else None)
        rows.append(row)
    if metric is not None:
        columns.insert(3, metric)
    print_table(columns, rows)


@runs_app.command("show", epilog=epilog(
    "flywheel runs show 3f9c2a1b", "flywheel runs show 3f9c2a1b --json",
    note="A run id may be shortened to any prefix no other run shares."))
def show_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id or its prefix.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Everything one run recorded: params, metrics, tags, inputs, artifacts, environment."""
    with open_project(ctx) as project:
        run = project.runs.get(run_id)
    if as_json:
        sys.stdout.write(json.dumps(_as_dict(run), default=jsonable) + "\n")
        return
    env = run.environment
    git = None if run.git_commit is None else run.git_commit[:12] + (
        " (uncommitted changes)" if run.git_dirty else "")
    print_table(["", ""], [
        ("run", run.id), ("name", run.name), ("status", run.status),
        ("parent", run.parent_id), ("started", run.started_at), ("ended", run.ended_at),
        ("seconds", None if run.seconds is None else f"{run.seconds:.2f}"), ("git", git),
        ("python", env.get("python")),
        ("packages", ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())),
    ], title=f"run {run.id[:SHORT_ID]}")
    _section("params", ["param", "value"], sorted(run.params.items()))
    _section("metrics", ["metric", "latest"],
             [(k, number(v)) for k, v in sorted(run.metrics.items())])
    _section("tags", ["tag", "value"], sorted(run.tags.items()))
    _section("inputs", ["table", "version"], sorted(run.inputs.items()))
    _section("artifacts", ["artifact", "kind", "size", "sha256"],
             [(a.name, a.kind, human_bytes(a.size), a.sha256[:12])
              for a in sorted(run.artifacts.values(), key=lambda a: a.name)])


@runs_app.command("compare", epilog=epilog(
    "flywheel runs compare 3f9c2a1b 77d0e4c2",
    "flywheel runs compare 3f9c2a1b 77d0e4c2 a01b2c3d --diff",
    note="Rows whose values differ between the runs are highlighted and marked with *."))
def compare_command(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(
        metavar="RUN_ID...", help="Two or more run ids (or prefixes).")],
    only_diff: Annotated[bool, typer.Option(
        "--diff", help="Only the params and metrics that differ.")] = False,
) -> None:
    """Params and metrics of several runs side by side, differences highlighted."""
    from flywheel._core.errors import InputError

    if len(run_ids) < 2:
        raise InputError("compare needs at least two runs", hint="flywheel runs compare A B")
    with open_project(ctx) as project:
        runs = [project.runs.get(run_id) for run_id in run_ids]
    rows: list[tuple[str, list[str]]] = [
        ("name", [r.name for r in runs]), ("status", [r.status for r in runs])]
    for key in sorted({k for r in runs for k in r.params}):
        rows.append((f"params.{key}", [r.params.get(key, "-") for r in runs]))
    for key in sorted({k for r in runs for k in r.metrics}):
        rows.append((f"metrics.{key}", [number(r.metrics[key]) if key in r.metrics else "-"
                                        for r in runs]))
    _print_comparison([r.id[:SHORT_ID] for r in runs], rows, only_diff)


def _print_comparison(ids: list[str], rows: list[tuple[str, list[str]]],
                      only_diff: bool) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("")
    table.add_column("")
    for run_id in ids:
        table.add_column(run_id, overflow="fold")
    for label, values in rows:
        differs = len(set(values)) > 1
        if only_diff and not differs:
            continue
        style = "bold yellow" if differs else ""
        table.add_row("*" if differs else "", Text(label, style=style),
                      *(Text(value, style=style) for value in values))
    out().print(table)


def number(value: float) -> str:
    """A metric value, exact enough to tell runs apart."""
    return f"{value:.6g}"


def _pairs(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def _section(title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    if rows:
        print_table(columns, [[cell_text(cell) if isinstance(cell, int) else cell
                               for cell in row] for row in rows], title=title)


def _as_dict(run: RunInfo) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "status": run.status, "parent_id": run.parent_id,
            "started_at": run.started_at, "ended_at": run.ended_at,
            "git_commit": run.git_commit, "git_dirty": run.git_dirty,
            "params": run.params, "metrics": run.metrics, "tags": run.tags,
            "inputs": run.inputs, "environment": run.environment,
            "artifacts": {a.name: {"kind": a.kind, "sha256": a.sha256, "size": a.size}
                          for a in run.artifacts.values()}}


def register(root: typer.Typer) -> None:
    add_group(root, runs_app)
