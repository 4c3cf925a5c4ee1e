"""`flywheel init [DIR]`: create a project folder and say what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli.groups import epilog
from flywheel.cli.output import out

EPILOG = epilog("flywheel init shop", 'flywheel init . --name "Shop analytics"')

_EXAMPLE = ("echo '{\"schema\": \"iglu:com.example/page_view/jsonschema/1-0-0\", "
            "\"data\": {\"user_id\": \"u1\", \"url\": \"https://example.com/\"}}' "
            "| flywheel ingest -")


def init_command(
    directory: Annotated[Path, typer.Argument(
        metavar="[DIR]", help="Folder of the new project (created if missing).")] = Path(),
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="Project name (default: the folder's name).")] = None,
) -> None:
    """Create a project: flywheel.yaml, an example schema and a README."""
    from flywheel.config import CONFIG_FILE
    from flywheel.scaffold import init_project

    target = directory.resolve()
    had_readme = (target / "README.md").exists()
    root = init_project(directory, name=name)
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


def _shell_path(path: Path) -> str:
    import shlex

    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def register(app: typer.Typer) -> None:
    app.command("init", epilog=EPILOG, short_help="Create a new project folder.")(init_command)
