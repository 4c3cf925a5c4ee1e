"""`flywheel log stats|tail|bad-rows|recover|compact`: look into the event log and repair it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import (
    cell_text,
    human_bytes,
    note,
    out,
    print_json,
    print_json_lines,
    print_table,
    shorten,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from flywheel.project import Project

ENVELOPE_HIDDEN = ("schema", "ingested_at", "source", "event_date")
"""Envelope columns `tail` leaves out of its table (they stay in --json), with the tracker's
(`flywheel.schemas.columns.TRACKER_COLUMNS`, imported late: it brings in Arrow)."""
RAW_WIDTH = 120

app = command_group(
    "log", help="Look into the event log: counts, latest events, bad rows; repair it.",
    examples=("flywheel log stats", "flywheel log tail com.example/page_view -n 20",
              "flywheel log bad-rows --reason schema_violation"))

ReasonOption = Annotated[str | None, typer.Option(
    "--reason", "-r", help="Only bad rows with this reason (e.g. schema_violation).")]
SchemaOption = Annotated[str | None, typer.Option(
    "--schema", "-s", metavar="IGLU_URI",
    help="Only bad rows whose schema starts with this (e.g. iglu:com.acme/order).")]


@app.command("stats", epilog=epilog(
    "flywheel log stats", "flywheel log stats --json | jq '.doors'",
    note="received = accepted + rejected + duplicates, per table and door. A rejected input "
    "sent again is one bad row with more receipts: bad rows count problems, rejected counts "
    "receipts."))
def stats_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON object: `tables` and `doors`, for scripts.")] = False,
) -> None:
    """Per log table: events, bad rows by reason, files, bytes, last offset; per table and
    door: events received, accepted, rejected and answered as duplicates."""
    with open_project(ctx) as project:
        stats = project.log.stats()
        receipts = project.log.receipts()
    if as_json:
        print_json({
            "tables": [asdict(s) for s in stats],
            "doors": [{"table": r.table, "door": r.door, "received": r.received,
                       "accepted": r.accepted, "rejected": r.rejected,
                       "duplicates": r.duplicates} for r in receipts],
        })
        return
    if not stats:
        note("no log tables yet: run `flywheel apply`, then `flywheel ingest`")
        return
    rows = [(s.table, s.events, _reasons(s.bad_rows), s.files, human_bytes(s.bytes),
             s.last_offset) for s in stats]
    print_table(["table", "events", "bad rows", "files", "bytes", "last offset"], rows)
    if receipts:
        print_table(["table", "door", "received", "accepted", "rejected", "duplicates"],
                    [(r.table, r.door, r.received, r.accepted, r.rejected, r.duplicates)
                     for r in receipts], title="received, by door")


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items())) or "0"


@app.command("tail", epilog=epilog(
    "flywheel log tail com.example/page_view",
    "flywheel log tail com.example/page_view/v1 -n 50 --as-of 3 --json",
    note="Offsets are the log's commits: --as-of reads the table as it was after that one."))
def tail_command(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(
        metavar="TABLE",
        help="vendor/name, vendor/name/v1 or an iglu: key; see `flywheel log stats`.")],
    count: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many events.")] = 10,
    as_of: Annotated[int | None, typer.Option(
        "--as-of", min=0, metavar="OFFSET", help="Read the log as of this offset.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The newest events of a log table, oldest first."""
    with open_project(ctx) as project:
        ref = project.log.table(table)
        rows = project.log.tail(str(ref), count, as_of=as_of).to_pylist()
    for row in rows:
        row["offset"] = row.pop("_commit_version", None)
    if as_json:
        print_json_lines(rows)
        return
    if not rows:
        note(f"no events in {ref} yet")
        return
    from flywheel.schemas.columns import TRACKER_COLUMNS

    hidden = {*ENVELOPE_HIDDEN, *TRACKER_COLUMNS, "offset"}
    shown = [c for c in rows[0] if c not in hidden]
    columns = ["offset", *shown]
    print_table(columns, ([row[c] for c in columns] for row in rows), title=str(ref))


@app.command("bad-rows", epilog=epilog(
    "flywheel log bad-rows", "flywheel log bad-rows --reason schema_violation --limit 50",
    "flywheel log bad-rows --schema iglu:com.example/page_view --json",
    note="Reasons: not_json, bad_envelope, unknown_schema, schema_violation, too_large."))
def bad_rows_command(
    ctx: typer.Context,
    reason: ReasonOption = None,
    schema: SchemaOption = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=0,
                                       help="How many of the latest rows to show.")] = 10,
    as_json: Annotated[bool, typer.Option(
        "--json", help="The latest rows, one JSON object per line.")] = False,
) -> None:
    """Rejected inputs: a summary by schema and reason, then the latest rows."""
    with open_project(ctx) as project:
        data = _bad_rows(project, reason, schema)
    # Only the rows shown become Python objects; the summary is computed in Arrow.
    latest: list[dict[str, Any]] = _latest(data, limit).to_pylist()
    if as_json:
        print_json_lines(latest)
        return
    if not data.num_rows:
        note("no bad rows" + (" match" if reason or schema else ""))
        return
    _bad_rows_summary(data)
    if latest:
        _print_latest(latest, data.num_rows)


def _bad_rows(project: Project, reason: str | None, schema: str | None) -> pa.Table:
    """The bad rows that match, with a `recovered` column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = project.log.bad_rows()
    if reason is not None:
        _check_reason(reason)
        data = data.filter(pc.equal(data.column("reason"), reason))
    if schema is not None:
        prefix = _schema_prefix(schema)
        data = data.filter(pc.fill_null(pc.starts_with(data.column("schema"), prefix), False))
    done = pa.array(sorted(project.log.recovered_ids()) if data.num_rows else [],
                    pa.string())
    return data.append_column("recovered", pc.is_in(data.column("bad_row_id"), value_set=done))


def _check_reason(reason: str) -> None:
    from flywheel._core.errors import InputError
    from flywheel.log.badrows import REASONS

    if reason not in REASONS:
        raise InputError(f"--reason {reason}: not a bad-row reason",
                         hint="one of " + ", ".join(sorted(REASONS)))


def _latest(data: pa.Table, limit: int) -> pa.Table:
    import pyarrow.compute as pc

    order = pc.sort_indices(data, sort_keys=[("received_at", "descending")])
    return data.take(order[:limit])


def _schema_prefix(schema: str) -> str:
    return schema if schema.startswith("iglu:") else f"iglu:{schema}"


def _bad_rows_summary(data: pa.Table) -> None:
    import pyarrow.compute as pc

    counted = data.group_by(["schema", "reason"]).aggregate(
        [("bad_row_id", "count"), ("receipts", "sum"), ("recovered", "sum")])
    counted = counted.take(pc.sort_indices(counted, [("schema", "ascending"),
                                                     ("reason", "ascending")]))
    rows = [(r["schema"] or "-", r["reason"], r["bad_row_id_count"], r["receipts_sum"],
             r["recovered_sum"]) for r in counted.to_pylist()]
    # One row per distinct input: `rows` counts problems, `received` counts their retries too.
    print_table(["schema", "reason", "rows", "received", "recovered"], rows, title="bad rows")


def _print_latest(rows: list[dict[str, Any]], total: int) -> None:
    # A block per row: messages and inputs are long, and a table would fold them to shreds.
    from rich.text import Text

    console = out()
    console.print(Text(f"latest {len(rows)} of {total:,}", style="bold"))
    for row in rows:
        head = Text(f"{cell_text(row['received_at'])}  ")
        head.append(row["reason"], style="red")
        head.append(f"  {row['schema'] or '-'}  door={row['door']}")
        if row["receipts"] > 1:
            head.append(f"  received {row['receipts']:,} times")
        if row["recovered"]:
            head.append("  recovered", style="green")
        console.print(head)
        console.print(Text(f"    {shorten(row['message'], 200)}"))
        raw = row["raw"].decode("utf-8", "backslashreplace")
        console.print(Text(f"    raw: {shorten(raw, RAW_WIDTH)}", style="dim"))


@app.command("recover", epilog=epilog(
    "flywheel log recover              [dim]# after `flywheel apply` of a fixed schema[/dim]",
    "flywheel log recover --fix fixes.py:add_url --reason schema_violation",
    "flywheel log recover --fix mypkg.fixes:repair --dry-run",
    note="A fix function takes the parsed event (a dict; the raw text when it is not JSON) "
    "and returns the fixed event, or None to leave it. Each bad row is recovered at most once; "
    "running recover again is safe."))
def recover_command(
    ctx: typer.Context,
    fix: Annotated[str | None, typer.Option(
        "--fix", metavar="MODULE:FUNCTION|FILE.py:FUNCTION",
        help="A function that repairs each event before it is validated again.")] = None,
    reason: ReasonOption = None,
    schema: SchemaOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate and count what would recover; write nothing.")] = False,
) -> None:
    """Validate bad rows again (after a schema fix or with --fix) and ingest those that pass."""
    if reason is not None:
        _check_reason(reason)
    with open_project(ctx) as project:
        repair = load_fix(fix, project.root) if fix else None
        report = project.log.recover(repair, reason=reason, dry_run=dry_run,
                                     schema=_schema_prefix(schema) if schema else None)
    if dry_run:
        print_table(["", "rows"], [("considered", report.considered),
                                   ("would recover", report.recovered),
                                   ("would stay bad", report.still_bad),
                                   ("skipped by fix", report.skipped)], title="recover, dry run")
        note("dry run: nothing was written")
        return
    print_table(["", "rows"], [("considered", report.considered),
                               ("recovered", report.recovered), ("still bad", report.still_bad),
                               ("skipped by fix", report.skipped)], title="recover")
    errors = report.result.errors[:5]
    if errors:
        print_table(["reason", "message"], [(e.reason, shorten(e.message, 100)) for e in errors],
                    title="still failing, for example")


def load_fix(spec: str, project_root: Path) -> Callable[[Any], Any]:
    """`module:function` (importable, the project folder included) or `path.py:function`."""
    import importlib
    import sys

    from flywheel._core.errors import FlywheelError, InputError
    from flywheel._core.modules import import_error, import_file

    target, _, name = spec.rpartition(":")
    if not target or not name.isidentifier():
        raise InputError(f"--fix {spec}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if target.endswith(".py") or Path(target).is_file():
        path = Path(target)
        if not path.is_file():
            raise InputError(f"--fix {spec}: no such file {target}")
        module: Any = import_file(path, "_flywheel_fix", InputError)
    else:
        if str(project_root) not in sys.path:
            sys.path.insert(0, str(project_root))
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise InputError(f"--fix {spec}: cannot import {exc.name}") from None
        except (FlywheelError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # the module ran and failed: say how, in one line
            raise import_error(Path(target), exc, InputError) from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise InputError(f"--fix {spec}: {target} has no function {name}")
    fixer: Callable[[Any], Any] = function
    return fixer


@app.command("compact", epilog=epilog("flywheel log compact",
                                      "flywheel log compact com.example/page_view"))
def compact_command(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(
        metavar="[TABLE]", help="One log table (default: every table).")] = None,
) -> None:
    """Merge small files of log tables into bigger ones; offsets and contents are unchanged."""
    with open_project(ctx) as project:
        metrics = project.log.compact(table)
    if not metrics:
        note("no log tables to compact")
        return
    rows = [(name, m.files_removed, m.files_added,
             "-" if m.version is None else m.version, m.skipped or "compacted")
            for name, m in sorted(metrics.items())]
    print_table(["table", "files removed", "files added", "offset", "result"], rows,
                title="compaction")


def register(root: typer.Typer) -> None:
    add_group(root, app)

