"""`flywheel models list|show|register|alias`: registered models, their lineage and aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import note, out, print_json, print_table, shorten

if TYPE_CHECKING:
    from flywheel.registry import ModelVersion

models_app = command_group(
    "models", help="The model registry: versions, lineage, aliases and their audit trail.",
    short_help="Model registry: list, show, register, alias.",
    examples=("flywheel models list", "flywheel models show purchase",
              "flywheel models register purchase --run 3f2a9c01",
              "flywheel models alias purchase champion 3 --reason 'auc +2%'"))
QUERY_WIDTH = 100
"""Characters of an entity query shown in a table (--json has all of it)."""


@models_app.command("list", epilog=epilog("flywheel models list"))
def list_command(ctx: typer.Context) -> None:
    """Every model: its newest version, how many there are, and where aliases point."""
    with open_project(ctx) as project:
        models = project.registry.models()
    if not models:
        note("no models yet; register one with `flywheel models register NAME --run RUN`")
        return
    rows = []
    for name, versions in models.items():
        newest = versions[-1]
        aliases = ", ".join(f"{alias}→{v.version}" for v in versions for alias in v.aliases)
        rows.append((name, newest.version, len(versions), newest.flavor, aliases or None,
                     newest.created_at))
    print_table(["model", "newest", "versions", "flavor", "aliases", "registered"], rows)


@models_app.command("show", epilog=epilog(
    "flywheel models show purchase", "flywheel models show purchase@champion",
    "flywheel models show purchase/3",
    note="A name shows every version and the alias history; name@alias or name/version "
    "shows that version in full: signature, metrics and lineage."))
def show_command(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(metavar="NAME[@ALIAS|/VERSION]",
                                       help="A model, or one of its versions.")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="The version (the newest, for a NAME) as one JSON object.")] = False,
) -> None:
    """Versions, aliases, lineage and the alias history of a model."""
    from flywheel.registry import parse_uri

    target = parse_uri(uri)
    with open_project(ctx) as project:
        registry = project.registry
        if target.version is None and target.alias is None:
            versions = registry.versions(target.name)
            history = registry.aliases_history(target.name)
        else:
            versions = [registry.get(target)]
            history = []
    if as_json:
        print_json(_as_dict(versions[-1]))
        return
    if len(versions) > 1 or (target.version is None and target.alias is None):
        print_table(["version", "aliases", "flavor", "run", "metrics", "registered"],
                    [(v.version, ", ".join(v.aliases) or None, v.flavor,
                      v.run_id[:8] if v.run_id else None, _metrics(v.metrics), v.created_at)
                     for v in versions], title=f"model {target.name}")
    _details(versions[-1])
    if history:
        print_table(["when", "alias", "from", "to", "by", "reason"],
                    [(c.at, c.alias, c.from_version, c.to_version, c.actor, c.reason)
                     for c in history], title="alias history")


@models_app.command("register", epilog=epilog(
    "flywheel models register purchase --run 3f2a9c01",
    "flywheel models register purchase --run 3f2a9c01 --artifact model --alias challenger",
    "flywheel models register purchase --run 3f2a9c01 --feature-service score --json",
    note="RUN is a run id or a prefix no other run shares (see `flywheel runs list`); the "
    "run must have finished. The artifact defaults to the run's one pickled object with a "
    "predict method (for a pipeline run, the step that returns the model). The feature "
    "service defaults to the run's training data's; the metrics are the run's, without "
    "step counts and durations; the lineage holds every table the training set read, the "
    "entity table too, down to log offsets (see `flywheel models show NAME/VERSION`)."))
def register_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model, e.g. purchase.")],
    run: Annotated[str, typer.Option("--run", metavar="RUN", show_default=False,
                                     help="The run that made the model: an id or a prefix.")],
    artifact: Annotated[str | None, typer.Option(
        "--artifact", metavar="ARTIFACT", help="The run's artifact that is the model "
        "(default: its only model).")] = None,
    feature_service: Annotated[str | None, typer.Option(
        "--feature-service", metavar="SERVICE", help="The features the model consumes "
        "(default: the run's training data's).")] = None,
    alias: Annotated[str | None, typer.Option(
        "--alias", metavar="ALIAS", help="Point this alias at the new version, e.g. "
        "challenger.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The new version as JSON.")] = False,
) -> None:
    """Register the next version of a model from a finished run."""
    with open_project(ctx) as project:
        version = project.registry.register(name, run_id=run, artifact=artifact,
                                            feature_service=feature_service, alias=alias)
    if as_json:
        print_json(_as_dict(version))
        return
    trained = version.signature.get("trained_on")
    given = version.signature.get("feature_service")
    if trained and given != trained:
        note(f"note: feature service '{given}' is not the training data's ('{trained}'); "
             "both are recorded")
    source = version.lineage.get("run") or {}
    out().print(f"registered {version.uri} from run {source.get('name')} "
                f"{str(source.get('id'))[:8]} (artifact {source.get('artifact')}, "
                f"{version.flavor})" + (f"; {name}@{alias} → version {version.version}"
                                        if alias else ""), highlight=False, markup=False)
    _details(version)


@models_app.command("alias", epilog=epilog(
    "flywheel models alias purchase champion 3 --reason 'auc 0.91 vs 0.89'",
    "flywheel models alias purchase challenger --remove --reason retired",
    note="Every change is kept in the alias history with the time, the user, and the "
    "reason (see `flywheel models show NAME`)."))
def alias_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model.")],
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[int | None, typer.Argument(
        metavar="VERSION", show_default=False, help="The version it should point at.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (kept in the "
                                               "history).")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the alias.")] = False,
) -> None:
    """Point an alias at a version (or remove it); the change is audited."""
    from flywheel._core.errors import InputError

    if (version is None) != remove:
        raise InputError("give a VERSION to point the alias at, or --remove (not both)",
                         hint="e.g. flywheel models alias purchase champion 3")
    with open_project(ctx) as project:
        if version is None:
            change = project.registry.remove_alias(name, alias, reason=reason)
        else:
            change = project.registry.set_alias(name, alias, version=version, reason=reason)
    if change.from_version == change.to_version:
        out().print(f"{name}@{alias} already points at version {version}; nothing changed")
    elif change.to_version is None:
        out().print(f"{name}@{alias} removed (was version {change.from_version})")
    else:
        was = "" if change.from_version is None else f" (was {change.from_version})"
        out().print(f"{name}@{alias} → version {change.to_version}{was}")


def _details(version: ModelVersion) -> None:
    signature, lineage = version.signature, version.lineage
    run = lineage.get("run") or {}
    service = signature.get("feature_service")
    trained = signature.get("trained_on")
    if service and trained and trained != service:
        service = f"{service} (trained on {trained})"
    rows: list[tuple[str, Any]] = [
        ("version", version.uri), ("aliases", ", ".join(version.aliases) or None),
        ("flavor", version.flavor), ("artifact", version.artifact_sha256[:12]),
        ("run", f"{run.get('name')} {run.get('id')}" + (
            f" (artifact {run['artifact']})" if run.get("artifact") else "") if run else None),
        ("feature service", service),
        ("inputs", ", ".join(signature.get("inputs") or []) or None),
        ("output", _pairs(signature.get("output_schema") or {}) or None),
        ("metrics", _metrics(version.metrics) or None),
    ]
    if run:
        rows += _training_rows(lineage)
    print_table(["", ""], rows, title=f"{version.name} version {version.version}")


def _training_rows(lineage: dict[str, Any]) -> list[tuple[str, Any]]:
    """Where the training set came from: its entity rows, window, size and tables."""
    data = lineage.get("training_data") or {}
    rows: list[tuple[str, Any]] = [("entity rows", _entity_text(lineage.get("entities")))]
    start, end = data.get("start"), data.get("end")
    if start or end:
        rows.append(("window", f"[{start or '…'}, {end or '…'})"))
    if isinstance(data.get("rows"), int):
        rows.append(("rows", data["rows"]))
    rows += [
        ("training set", _pairs(lineage.get("training_set") or {}, sep=" v") or None),
        ("log offsets", ", ".join(f"{log} {first}..{last}" for log, (first, last)
                                  in (lineage.get("log_offsets") or {}).items()) or None),
    ]
    return rows


def _entity_text(entities: Any) -> str:
    if not isinstance(entities, dict) or "kind" not in entities:
        return "not recorded (the run logged table versions only; run.log_training_set " \
            "records the entity rows' source)"
    tables = _pairs(entities.get("tables") or {}, sep=" v")
    if entities["kind"] == "frame":
        return str(entities.get("note") or "a frame: no table lineage")
    if entities["kind"] == "table":
        return f"table {tables}"
    query = shorten(str(entities.get("spec") or entities.get("text") or ""), QUERY_WIDTH)
    return f"query over {tables or 'no derived table'}: {query}"


def _as_dict(version: ModelVersion) -> dict[str, Any]:
    return {"name": version.name, "version": version.version, "uri": version.uri,
            "run_id": version.run_id, "artifact_sha256": version.artifact_sha256,
            "flavor": version.flavor, "aliases": version.aliases,
            "signature": version.signature, "metrics": version.metrics,
            "lineage": version.lineage, "created_at": version.created_at}


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items()))


def _pairs(values: dict[str, Any], sep: str = "=") -> str:
    return ", ".join(f"{k}{sep}{v}" for k, v in sorted(values.items()))


def register(root: typer.Typer) -> None:
    add_group(root, models_app)
