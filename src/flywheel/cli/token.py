"""`flywheel token create|list|revoke`: bearer tokens with scopes, stored only as sha256."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

import typer

from flywheel.cli._common import epilog, note, open_project, print_table

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

app = typer.Typer(name="token", no_args_is_help=True, rich_markup_mode="rich",
                  help="Tokens for servers bound beyond 127.0.0.1; each has scopes.",
                  epilog=epilog("flywheel token create collector --scope ingest",
                                "flywheel token list", "flywheel token revoke collector"))


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    PREDICT = "predict"
    ADMIN = "admin"


def new_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the metadata store keeps (and servers look tokens up by)."""
    from flywheel._core.hashing import token_digest

    return token_digest(token)


@app.command("create", epilog=epilog(
    "flywheel token create collector --scope ingest",
    "TOKEN=$(flywheel token create ci --scope read --scope predict)",
    note="Scopes: ingest, read, predict, admin. The token goes to stdout alone, the notes to "
    "stderr, so it can be captured."))
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name to list and revoke it by.")],
    scopes: Annotated[list[Scope], typer.Option(
        "--scope", case_sensitive=False, help="What it allows; repeat for more than one.")],
) -> None:
    """Create a token and print it once (only its sha256 is stored)."""
    from flywheel._core.errors import InputError
    from flywheel._core.metadata import TokenRecord

    if not NAME.match(name):
        raise InputError(f"token name {name!r} is not allowed",
                         hint="use 1-64 letters, digits, '.', '_' or '-'")
    token = new_token()
    chosen = tuple(sorted({scope.value for scope in scopes}))
    with open_project(ctx) as project:
        project.metadata.add_token(TokenRecord(name, hash_token(token), chosen))
    print(token)
    note(f"token '{name}' created with scopes {', '.join(chosen)}. It is shown only now: "
         "Flywheel stores its sha256, not the token. Clients send it as "
         "`Authorization: Bearer <token>`.")


@app.command("list", epilog=epilog("flywheel token list"))
def list_command(ctx: typer.Context) -> None:
    """Tokens by name, with their scopes (the tokens themselves are not stored)."""
    with open_project(ctx) as project:
        tokens = project.metadata.list_tokens()
    if not tokens:
        note("no tokens; create one with `flywheel token create NAME --scope ingest`")
        return
    print_table(["name", "scopes", "created"],
                [(t.name, ", ".join(t.scopes), t.created_at) for t in tokens])


@app.command("revoke", epilog=epilog("flywheel token revoke collector"))
def revoke_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The token's name.")],
) -> None:
    """Delete a token: running servers refuse it within a second, in every worker."""
    from flywheel._core.errors import InputError

    with open_project(ctx) as project:
        deleted = project.metadata.delete_token(name)
    if not deleted:
        raise InputError(f"no token named '{name}'", hint="`flywheel token list` shows them")
    note(f"token '{name}' revoked")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="token")
