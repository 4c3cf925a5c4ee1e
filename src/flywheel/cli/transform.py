"""`flywheel transform|replay|lineage` and `flywheel tables list|show|versions|hash`:
build derived tables from the log, and look into them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import note, out, print_json_lines, print_table
from flywheel.cli.progress import live_lines

if TYPE_CHECKING:
    from rich.tree import Tree

    from flywheel._core.metadata.table_versions import TableVersionRecord
    from flywheel.monitoring.runner import MonitorEvaluation
    from flywheel.project import Project
    from flywheel.transforms.lineage import LineageNode
    from flywheel.transforms.runner import TransformRun

OnStart = Callable[[str], None]
OnDone = Callable[["TransformRun"], None]
Build = Callable[["Project", OnStart, OnDone], object]
"""Runs transforms on a project, reporting each start and each finished run."""

CODE_WIDTH = 12
SUMMARY_COLUMNS = ["transform", "mode", "version", "rows in", "rows out", "seconds"]

TableArgument = Annotated[str, typer.Argument(
    metavar="NAME", help="A derived table: the name of its transform.")]
VersionOption = Annotated[int | None, typer.Option(
    "--version", min=0, metavar="N", help="That version of the table (default: newest).")]

tables_app = command_group(
    "tables",
    help="Look into derived tables: what exists, their rows, versions and content hashes.",
    examples=("flywheel tables list", "flywheel tables show per_user -n 5",
              "flywheel tables versions per_user", "flywheel tables hash per_user"))


# Building ----------------------------------------------------------------------------
def transform_command(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME",
        help="Transforms to build, with everything they read from (default: all).")] = None,
    full_refresh: Annotated[bool, typer.Option(
        "--full-refresh", help="Rebuild from offset 0 instead of reading only new rows.")
    ] = False,
) -> None:
    """Build derived tables from the log: only what is new, in dependency order."""
    _build(ctx, lambda project, start, done: project.transform(
        names or None, full_refresh=full_refresh, on_start=start, on_done=done))


def replay_command(ctx: typer.Context) -> None:
    """Rebuild every derived table from the beginning of the log."""
    monitors: list[MonitorEvaluation] = []
    _build(ctx, lambda project, start, done: project.replay(on_start=start, on_done=done,
                                                            on_monitor=monitors.append))
    if monitors:
        print_table(["monitor", "windows", "rows", "version"],
                    [(e.monitor, e.windows, len(e.results), e.version) for e in monitors],
                    title="monitors rebuilt")


def _build(ctx: typer.Context, build: Build) -> None:
    """Run `build` with a live line per transform; then a summary, even when one failed."""
    finished: list[TransformRun] = []
    started: list[str] = []
    try:
        with open_project(ctx) as project, live_lines() as lines:
            def on_start(name: str) -> None:
                started.append(name)
                lines.start(name)

            def on_done(run: TransformRun) -> None:
                finished.append(run)
                lines.finish(run.name, _done_text(run))

            build(project, on_start, on_done)
    except BaseException:
        if finished:  # what was published stays published: say so before the error
            failed = started[len(finished):]
            _summary(finished, failed[0] if failed else None)
        raise
    if not started:
        note("no transforms under transforms/; add one as transforms/NAME.sql "
             "(a `-- inputs: vendor/name` header, then a select)")
        return
    _summary(finished, None)


def _summary(runs: list[TransformRun], failed: str | None) -> None:
    rows: list[tuple[Any, ...]] = [
        (r.name, _mode(r), r.version, *((None, None) if r.mode == "skipped" else
                                        (r.rows_in, r.rows_out)), round(r.seconds, 2))
        for r in runs]
    if failed is not None:
        rows.append((failed, "failed", None, None, None, None))
    print_table(SUMMARY_COLUMNS, rows, title="transforms")


def _mode(run: TransformRun) -> str:
    return f"{run.mode}: {run.note}" if run.note else run.mode


def _done_text(run: TransformRun) -> str:
    rows = "" if run.mode == "skipped" else f", {run.rows_in:,} in, {run.rows_out:,} out"
    return f"{run.name}: {_mode(run)}{rows}"


# Lineage -----------------------------------------------------------------------------
def lineage_command(
    ctx: typer.Context,
    table: TableArgument,
    version: VersionOption = None,
) -> None:
    """Where a derived table version came from: the tables and log offsets it read."""
    with open_project(ctx) as project:
        root = project.lineage(table, version)
    out().print(_tree(root))


def _tree(node: LineageNode, parent: Tree | None = None) -> Tree:
    from rich.text import Text
    from rich.tree import Tree

    label = Text(node.describe(), style="bold" if parent is None else "")
    branch = Tree(label) if parent is None else parent.add(label)
    for child in node.inputs:
        _tree(child, branch)
    return branch


# Tables ------------------------------------------------------------------------------
@tables_app.command("list", epilog=epilog("flywheel tables list"))
def list_command(ctx: typer.Context) -> None:
    """Every transform in run order: materialization, newest version, rows, last build."""
    with open_project(ctx) as project:
        graph = project.transform_graph()
        rows = []
        for name in graph.order:
            t = graph.by_name[name]
            stats = project.tables.handle(name).stats()
            history = project.table_versions(name)
            rows.append((name, t.materialized, ", ".join(i.target for i in t.inputs),
                         stats.version if stats else None, stats.rows if stats else None,
                         history[-1].created_at if history else None))
    if not rows:
        note("no transforms under transforms/; add one as transforms/NAME.sql")
        return
    print_table(["table", "materialized", "inputs", "version", "rows", "last built"], rows)


@tables_app.command("show", epilog=epilog(
    "flywheel tables show per_user", "flywheel tables show views --version 3 -n 50 --json"))
def show_command(
    ctx: typer.Context,
    table: TableArgument,
    version: VersionOption = None,
    count: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many rows.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The first rows of a derived table (of its newest version, or of --version)."""
    with open_project(ctx) as project:
        chosen = _version(project, table, version)
        data = project.tables.handle(table).dataset(chosen).head(count)
    rows: list[dict[str, Any]] = data.to_pylist()
    if as_json:
        print_json_lines(rows)
        return
    if not rows:
        note(f"table {table} v{chosen} has no rows")
        return
    print_table(data.column_names, ([row[c] for c in data.column_names] for row in rows),
                title=f"{table} v{chosen}")


@tables_app.command("versions", epilog=epilog("flywheel tables versions per_user"))
def versions_command(ctx: typer.Context, table: TableArgument) -> None:
    """Every recorded version of a derived table: how it was built, from which offsets."""
    from flywheel._core.errors import InputError

    with open_project(ctx) as project:
        history = project.table_versions(table)
    if not history:
        raise InputError(f"no recorded versions of table '{table}'",
                         hint="see `flywheel tables list`; build it with `flywheel transform`")
    rows = [(r.version, r.mode, r.rows_in, r.rows_out, r.code_hash[:CODE_WIDTH], _inputs(r),
             r.created_at) for r in history]
    print_table(["version", "mode", "rows in", "rows out", "code", "inputs", "created"], rows,
                title=table)


def _inputs(record: TableVersionRecord) -> str:
    """`com.example/page_view 0..4, users v3`: what one version read, by input."""
    parts = []
    for spec in json.loads(record.inputs).values():
        first, upto = max(spec["after"] + 1, 0), spec["upto"]
        if first > upto:
            span = f"nothing after {upto}"
        elif spec["kind"] == "table":  # a full build reads one version, not a range
            span = f"v{upto}" if spec["after"] < 0 else f"v{first}..{upto}"
        else:
            span = f"{first}..{upto}"
        parts.append(f"{spec['target']} {span}")
    return ", ".join(parts)


@tables_app.command("hash", epilog=epilog(
    "flywheel tables hash per_user", "flywheel tables hash per_user --version 2",
    note="Equal content gives an equal hash, whatever the row order or file layout: a "
    "replay of the same log with the same code must print the same hash."))
def hash_command(ctx: typer.Context, table: TableArgument,
                 version: VersionOption = None) -> None:
    """The content hash of a derived table version."""
    with open_project(ctx) as project:
        chosen = _version(project, table, version)
        digest = project.tables.content_hash(table, chosen)
    sys.stdout.write(digest + "\n")


def _version(project: Project, table: str, version: int | None) -> int:
    """`version`, checked to exist, or the newest one; a clear error for unknown tables."""
    from flywheel._core.errors import InputError

    if "/" in table or table.startswith("iglu:"):
        raise InputError(f"'{table}' names a log table; derived tables are named after "
                         "their transform", hint="read log tables with `flywheel log tail`")
    head = project.tables.version(table)
    if head is None:
        raise InputError(f"no derived table named '{table}' has been built",
                         hint="see `flywheel tables list`; build it with `flywheel transform`")
    if version is None:
        return head
    if version > head:
        raise InputError(f"table '{table}' has versions 0..{head}; {version} is not one")
    return version


def register(root: typer.Typer) -> None:
    root.command("transform", short_help="Build derived tables from the log.", epilog=epilog(
        "flywheel transform", "flywheel transform per_user",
        "flywheel transform views --full-refresh",
        note="Incremental transforms read only what was committed after the offsets their "
        "last version recorded; a table whose code and inputs did not change is skipped. "
        "A version that breaks an expectation is not published (exit code 2)."))(
        transform_command)
    root.command("replay", short_help="Rebuild every derived table from the log.",
                 epilog=epilog("flywheel replay", note="Same log and same code give the "
                               "same tables: compare with `flywheel tables hash NAME`."))(
        replay_command)
    root.command("lineage", short_help="Show the tables and log offsets a table came from.",
                 epilog=epilog("flywheel lineage per_user",
                               "flywheel lineage per_user --version 2"))(lineage_command)
    add_group(root, tables_app)
