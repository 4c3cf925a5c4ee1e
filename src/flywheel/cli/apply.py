"""`flywheel apply`: validate the definitions in the project and register what is new."""

from __future__ import annotations

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import epilog
from flywheel.cli.output import note, print_table

EPILOG = epilog(
    "flywheel apply", "flywheel -p ~/shop apply",
    note="Schemas are immutable once registered: to change one, add a new version file (a "
    "MINOR bump such as 1-1-0 to add optional properties, a new MAJOR to break).")


def apply_command(ctx: typer.Context) -> None:
    """Check the schemas under schemas/, the transforms, the feature definitions and the
    deployments, monitors; register new schema versions and their log tables."""
    with open_project(ctx) as project:
        report = project.apply()
    rows = [(key, "registered") for key in report.registered]
    rows += [(key, "unchanged") for key in report.unchanged]
    if not rows:
        note("no schemas found under schemas/; add one as "
             "schemas/{vendor}/{name}/jsonschema/1-0-0")
        return
    print_table(["schema", "status"], sorted(rows), title="schemas")
    print_table(["log table"], [(table,) for table in report.tables], title="log tables")
    if report.transforms:
        print_table(["transform"], [(name,) for name in report.transforms],
                    title="transforms, in build order")
    if report.features:
        print_table(["kind", "name", "status"], report.features, title="feature definitions")
    if report.deployments:
        print_table(["deployment", "policy"], report.deployments, title="deployments")
    if report.monitors:
        print_table(["monitor", "kind", "target"], report.monitors, title="monitors")


def register(app: typer.Typer) -> None:
    app.command("apply", epilog=EPILOG,
                short_help="Validate and register schemas; create their log tables.")(
        apply_command)
