"""`flywheel models list|show|alias`: registered models, their lineage and aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flywheel.cli._common import epilog, note, open_project, out, print_table

if TYPE_CHECKING:
    from flywheel.registry import ModelVersion

models_app = typer.Typer(
    name="models", no_args_is_help=True, rich_markup_mode="rich",
    help="The model registry: versions, lineage, aliases and their audit trail.",
    epilog=epilog("flywheel models list", "flywheel models show purchase",
                  "flywheel models alias purchase champion 3 --reason 'auc +2%'"))


@models_app.command("list", epilog=epilog("flywheel models list"))
def list_command(ctx: typer.Context) -> None:
    """Every model: its newest version, how many there are, and where aliases point."""
    with open_project(ctx) as project:
        models = project.registry.models()
    if not models:
        note("no models yet; register one with project.registry.register(name, ...)")
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
    rows: list[tuple[str, Any]] = [
        ("version", version.uri), ("aliases", ", ".join(version.aliases) or None),
        ("flavor", version.flavor), ("artifact", version.artifact_sha256[:12]),
        ("run", f"{run.get('name')} {run.get('id')}" if run else None),
        ("feature service", signature.get("feature_service")),
        ("inputs", ", ".join(signature.get("inputs") or []) or None),
        ("output", _pairs(signature.get("output_schema") or {}) or None),
        ("metrics", _metrics(version.metrics) or None),
        ("training set", _pairs(lineage.get("training_set") or {}, sep=" v") or None),
        ("log offsets", ", ".join(f"{log} {first}..{last}" for log, (first, last)
                                  in (lineage.get("log_offsets") or {}).items()) or None),
    ]
    print_table(["", ""], rows, title=f"{version.name} version {version.version}")


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items()))


def _pairs(values: dict[str, Any], sep: str = "=") -> str:
    return ", ".join(f"{k}{sep}{v}" for k, v in sorted(values.items()))


def register(root: typer.Typer) -> None:
    root.add_typer(models_app, name="models",
                   short_help="Model registry: list, show, alias.")
