"""Help text and command groups: every sub-app of `flywheel` is made the same way."""

from __future__ import annotations

import typer


def epilog(*examples: str, note: str = "") -> str:
    """Help text after the options: examples, one per line, then an optional paragraph.

    Rich markup help joins the lines of a paragraph only at blank lines, so each example is
    its own paragraph and `note` must not be hard-wrapped."""
    title = "Examples" if len(examples) > 1 else "Example"
    parts = [f"[bold]{title}[/bold]", *(f"  {example}" for example in examples)]
    return "\n\n".join([*parts, note] if note else parts)


def command_group(name: str, *, help: str, examples: tuple[str, ...] = (),
                  short_help: str | None = None) -> typer.Typer:
    """A sub-app of `flywheel`: help, examples after the options, the help when called bare.

    `short_help` is its line in `flywheel --help` (default: the start of `help`)."""
    return typer.Typer(name=name, help=help, short_help=short_help,
                       epilog=epilog(*examples) if examples else None,
                       no_args_is_help=True, rich_markup_mode="rich")


def add_group(root: typer.Typer, group: typer.Typer) -> None:
    """Register a sub-app made by `command_group` under its own name and short help."""
    root.add_typer(group)
