"""`flywheel features list|materialize|get`: the feature store's definitions, loading the
online store, and reading it back."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import jsonable, note, print_table
from flywheel.cli.progress import view_progress

if TYPE_CHECKING:
    import datetime as dt

features_app = command_group(
    "features", help="The feature store: definitions, materialising views online, reading values.",
    short_help="Feature store: list, materialize, get.",
    examples=("flywheel features list", "flywheel features materialize",
              "flywheel features get --entity user_id=u1 -f visits:pages"))

SUMMARY_COLUMNS = ["view", "mode", "rows", "source version", "seconds"]


@features_app.command("list", epilog=epilog("flywheel features list"))
def list_command(ctx: typer.Context) -> None:
    """Entities, feature views (source, keys, features, TTL) and feature services."""
    with open_project(ctx) as project:
        registry = project.features.registry
    if not (registry.entities or registry.views or registry.services):
        note("no feature definitions; declare entities, feature views and services in "
             "definitions.py or features.yaml")
        return
    if registry.entities:
        print_table(["entity", "join keys", "description"],
                    [(e.name, ", ".join(e.join_keys), e.description or None)
                     for e in sorted(registry.entities.values(), key=lambda e: e.name)],
                    title="entities")
    if registry.views:
        print_table(["view", "source", "entities", "join keys", "timestamp", "features", "ttl"],
                    [(v.name, v.source, ", ".join(e.name for e in v.entities),
                      ", ".join(v.join_keys), v.timestamp_column,
                      ", ".join(f.name if f.dtype is None else f"{f.name}: {f.dtype}"
                                for f in v.specs),
                      _ttl(v.max_age))
                     for v in sorted(registry.views.values(), key=lambda v: v.name)],
                    title="feature views")
    if registry.services:
        print_table(["service", "features", "description"],
                    [(s.name, ", ".join(s.features), s.description or None)
                     for s in sorted(registry.services.values(), key=lambda s: s.name)],
                    title="feature services")


def _ttl(ttl: dt.timedelta | None) -> str:
    if ttl is None:
        return "none"
    seconds = int(ttl.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@features_app.command("materialize", epilog=epilog(
    "flywheel features materialize", "flywheel features materialize visits",
    "flywheel features materialize visits --full",
    note="Only rows a view's source table gained since the last run are read while the "
    "table only grew by appends (incremental); a view whose source did not change is "
    "skipped. --full rebuilds the view's online rows from the whole table."))
def materialize_command(
    ctx: typer.Context,
    views: Annotated[list[str] | None, typer.Argument(
        metavar="VIEW", show_default=False,
        help="Feature views to materialise (default: all).")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Rewrite from the whole source table instead of what is new.")] = False,
) -> None:
    """Write the latest feature values of views to the online store."""
    with open_project(ctx) as project:
        store = project.features
        if not views and not store.registry.views:
            note("no feature views; declare them in definitions.py or features.yaml")
            return
        with view_progress("materialising") as on_progress:
            runs = store.materialize(views or None, full=full, on_progress=on_progress)
    print_table(SUMMARY_COLUMNS,
                [(r.view, r.mode, r.rows, r.source_version, round(r.seconds, 2)) for r in runs],
                title="materialized")


@features_app.command("get", epilog=epilog(
    "flywheel features get --entity user_id=u1 -f visits:pages -f visits:seconds",
    "flywheel features get -e user_id=u1 -e user_id=u2 --service score --json",
    "flywheel features get -e user_id=u1 --service score -r budget=40",
    note="Repeat --entity for more entities; a composite key gives each entity every key "
    "(-e user_id=u1 -e sku=s9). Unknown entities print empty values and found = no."))
def get_command(
    ctx: typer.Context,
    entities: Annotated[list[str], typer.Option(
        "--entity", "-e", metavar="KEY=VALUE", show_default=False,
        help="A join key value; repeat for several entities.")],
    features: Annotated[list[str] | None, typer.Option(
        "--feature", "-f", metavar="VIEW:FEATURE", show_default=False,
        help="A feature (view:feature, or view:* for all of a view); repeatable.")] = None,
    service: Annotated[str | None, typer.Option(
        "--service", "-s", metavar="NAME", help="Every feature of a feature service.")] = None,
    request: Annotated[list[str] | None, typer.Option(
        "--request", "-r", metavar="FIELD=VALUE", show_default=False,
        help="A request field for on-demand views, one per entity (numbers as numbers); "
        "repeatable.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON object: {features: {column: [values]}, found: {view: "
        "[bool]}}.")] = False,
) -> None:
    """Read the latest feature values of entities from the online store."""
    from flywheel._core.errors import InputError

    if (not features) == (service is None):
        raise InputError("pass either --feature/-f (repeatable) or --service, not both",
                         hint="see `flywheel features get --help`")
    keys = _entities(entities)
    with open_project(ctx) as project:
        result = project.features.get_online_features(
            entities=keys, features=features or None, feature_service=service,
            request_data=_request_data(request or []))
    if as_json:
        sys.stdout.write(json.dumps({"features": result.columns, "found": result.found},
                                    default=jsonable, ensure_ascii=False) + "\n")
        return
    columns = list(result.columns)
    count = len(next(iter(result.columns.values()), []))
    found = [f"found: {view}" if len(result.found) > 1 else "found" for view in result.found]
    rows: list[list[Any]] = [
        [result.columns[c][i] for c in columns] + [ok[i] for ok in result.found.values()]
        for i in range(count)]
    print_table(columns + found, rows)


def _request_data(pairs: list[str]) -> dict[str, list[Any]]:
    """`["budget=10", "budget=20"]` -> {"budget": [10, 20]}: JSON scalars, else text."""
    fields: dict[str, list[Any]] = {}
    for key, value in _key_values(pairs, "--request", "-r budget=10"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        fields.setdefault(key, []).append(
            parsed if parsed is None or isinstance(parsed, str | int | float | bool) else value)
    return fields


def _key_values(pairs: list[str], option: str, example: str) -> list[tuple[str, str]]:
    from flywheel._core.errors import InputError

    found = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} '{pair}' is not KEY=VALUE", hint=f"e.g. {example}")
        found.append((key.strip(), value))
    return found


def _entities(pairs: list[str]) -> dict[str, list[str]]:
    """`["user_id=u1", "user_id=u2"]` -> {"user_id": ["u1", "u2"]}."""
    from flywheel._core.errors import InputError

    entities: dict[str, list[str]] = {}
    for key, value in _key_values(pairs, "--entity", "-e user_id=u1"):
        entities.setdefault(key, []).append(value)
    lengths = {len(values) for values in entities.values()}
    if len(lengths) > 1:
        shown = ", ".join(f"{k} x{len(v)}" for k, v in entities.items())
        raise InputError(f"every join key needs the same number of --entity values ({shown})")
    return entities


def register(root: typer.Typer) -> None:
    add_group(root, features_app)
