"""`flywheel init [DIR]`: create a project folder and say what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli.groups import epilog
from flywheel.cli.output import out

EPILOG = epilog("flywheel init shop", 'flywheel init . --name "Shop analytics"',
                "flywheel init shop --example shop   [dim]# the simulated shop, end to end[/dim]")

_EXAMPLE = ("echo '{\"schema\": \"iglu:com.example/page_view/jsonschema/1-0-0\", "
            "\"data\": {\"user_id\": \"u1\", \"url\": \"https://example.com/\"}}' "
            "| flywheel ingest -")


def init_command(
    directory: Annotated[Path, typer.Argument(
        metavar="[DIR]", help="Folder of the new project (created if missing).")] = Path(),
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="Project name (default: the folder's name).")] = None,
    example: Annotated[str | None, typer.Option(
        "--example", metavar="NAME",
        help="Copy a complete example project instead (shop: schemas, transforms, "
        "features, a training pipeline, a deployment and monitors).")] = None,
) -> None:
    """Create a project: flywheel.yaml, an example schema and a README."""
    from flywheel.config import CONFIG_FILE
    from flywheel.scaffold import example_files, init_project

    target = directory.resolve()
    had_readme = (target / "README.md").exists()
    root = init_project(directory, name=name, example=example)
    if example is not None:
        _example_summary(root, [CONFIG_FILE, *example_files(example)])
        return
    created = [CONFIG_FILE, "schemas/com.example/page_view/jsonschema/1-0-0", ".gitignore"]
    if not had_readme:
        created.append("README.md")
    console = out()
    console.print(f"Created a Flywheel project in {root}", markup=False)
    for path in created:
        console.print(f"  {path}", markup=False)
    console.print("\nNext:", markup=False)
    steps = ([f"cd {_shell_path(root)}"] if root != Path.cwd().resolve() else []) + [
        "flywheel apply                 # check and register the schemas",
        _EXAMPLE,
        "flywheel log stats             # what the log holds",
    ]
    for step in steps:
        console.print(f"  {step}", markup=False, soft_wrap=True)


def _example_summary(root: Path, files: list[str]) -> None:
    console = out()
    console.print(f"Created the shop example in {root} ({len(files)} files; see its "
                  "README.md)", markup=False)
    steps = ([f"cd {_shell_path(root)}"] if root != Path.cwd().resolve() else []) + [
        "flywheel apply                         # schemas, transforms, features",
        "flywheel simulate --days 4 --out events.ndjson",
        "flywheel ingest events.ndjson && flywheel transform",
        "flywheel run pipelines/train.yaml      # LightGBM against a baseline",
    ]
    console.print("\nNext:", markup=False)
    for step in steps:
        console.print(f"  {step}", markup=False, soft_wrap=True)


def _shell_path(path: Path) -> str:
    import shlex

    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def register(app: typer.Typer) -> None:
    app.command("init", epilog=EPILOG, short_help="Create a new project folder.")(init_command)
