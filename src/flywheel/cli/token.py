"""`flywheel token create|list|revoke`: bearer tokens with scopes, stored only as sha256, and
publishable keys for browser and mobile trackers (public, limited to the tracker doors)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

import typer

from flywheel.cli.context import open_project
from flywheel.cli.groups import add_group, command_group, epilog
from flywheel.cli.output import note, print_table

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

app = command_group(
    "token", help="Tokens for servers bound beyond 127.0.0.1 (each has scopes), and "
    "publishable keys for trackers.",
    examples=("flywheel token create collector --scope ingest",
              "flywheel token create web --publishable --app-id shop "
              "--origin https://shop.example.com --rate 50/s",
              "flywheel token list", "flywheel token revoke collector"))


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    PREDICT = "predict"
    FEEDBACK = "feedback"
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
    "KEY=$(flywheel token create web --publishable --app-id shop "
    "--origin https://shop.example.com --rate 50/s)",
    note="Scopes: ingest, read, predict, feedback, admin. The token goes to stdout alone, the "
    "notes to stderr, so it can be captured. A publishable key is not a secret (it ships in "
    "web pages): trackers send it in the collector URL, https://HOST/k/KEY, and it opens only "
    "the tracker doors, for its app ids, origins and rate."))
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name to list and revoke it by.")],
    scopes: Annotated[list[Scope] | None, typer.Option(
        "--scope", case_sensitive=False, help="What it allows; repeat for more than one.")] = None,
    publishable: Annotated[bool, typer.Option(
        "--publishable", help="A publishable key for trackers instead of a secret token.")
    ] = False,
    app_ids: Annotated[list[str] | None, typer.Option(
        "--app-id", metavar="ID", help="Publishable keys: an app id (tracker appId) it "
        "accepts events of; repeat for more.")] = None,
    origins: Annotated[list[str] | None, typer.Option(
        "--origin", metavar="ORIGIN", help="Publishable keys: a web origin "
        "(https://host[:port]) it accepts requests and answers CORS from; repeat for more.")
    ] = None,
    rate: Annotated[str | None, typer.Option(
        "--rate", metavar="N/s", help="Publishable keys: events per second (or N/min) per "
        "server process; default: no limit.")] = None,
) -> None:
    """Create a token (or, with --publishable, a key) and print it."""
    from flywheel._core.errors import InputError

    if not NAME.match(name):
        raise InputError(f"token name {name!r} is not allowed",
                         hint="use 1-64 letters, digits, '.', '_' or '-'")
    if publishable:
        if scopes:
            raise InputError("a publishable key has no scopes (it opens only the tracker "
                             "doors)", hint="drop --scope, or drop --publishable for a token")
        _create_key(ctx, name, app_ids or [], origins or [], rate)
        return
    if app_ids or origins or rate is not None:
        raise InputError("--app-id, --origin and --rate are for publishable keys",
                         hint="add --publishable")
    if not scopes:
        raise InputError("missing option '--scope'",
                         hint="give at least one: --scope ingest|read|predict|feedback|admin")
    _create_token(ctx, name, scopes)


def _create_token(ctx: typer.Context, name: str, scopes: list[Scope]) -> None:
    from flywheel._core.metadata.tokens import TokenRecord

    token = new_token()
    chosen = tuple(sorted({scope.value for scope in scopes}))
    with open_project(ctx) as project:
        project.metadata.add_token(TokenRecord(name, hash_token(token), chosen))
    print(token)
    note(f"token '{name}' created with scopes {', '.join(chosen)}. It is shown only now: "
         "Flywheel stores its sha256, not the token. Clients send it as "
         "`Authorization: Bearer <token>`.")


def _create_key(ctx: typer.Context, name: str, app_ids: list[str], origins: list[str],
                rate: str | None) -> None:
    from flywheel._core.errors import InputError
    from flywheel._core.metadata.tokens import PUBLISHABLE, TokenRecord
    from flywheel.ingest.keys import (
        check_app_id,
        describe_rate,
        new_key,
        normalise_origin,
        parse_rate,
    )

    if not app_ids:
        raise InputError("a publishable key needs at least one --app-id",
                         hint="the tracker's appId, e.g. --app-id shop")
    chosen_ids = tuple(dict.fromkeys(check_app_id(a) for a in app_ids))
    chosen_origins = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    per_second = parse_rate(rate) if rate is not None else None
    key = new_key()
    record = TokenRecord(name, hash_token(key), (), kind=PUBLISHABLE, app_ids=chosen_ids,
                         origins=chosen_origins, rate=per_second, key=key)
    with open_project(ctx) as project:
        project.metadata.add_token(record)
    print(key)
    where = ", ".join(chosen_origins) if chosen_origins else "no browser origin (apps only)"
    note(f"publishable key '{name}' created for app ids {', '.join(chosen_ids)}, from {where}, "
         f"rate {describe_rate(per_second)}. It is not a secret: trackers use the endpoint "
         f"https://<host>/k/{key} (POST .../com.snowplowanalytics.snowplow/tp2, GET .../i).")


@app.command("list", epilog=epilog("flywheel token list"))
def list_command(ctx: typer.Context) -> None:
    """Tokens and publishable keys by name (tokens themselves are not stored; keys are,
    being public)."""
    from flywheel._core.metadata.tokens import PUBLISHABLE
    from flywheel.ingest.keys import describe_rate

    with open_project(ctx) as project:
        tokens = project.metadata.list_tokens()
    if not tokens:
        note("no tokens; create one with `flywheel token create NAME --scope ingest`")
        return
    rows = []
    for t in tokens:
        if t.kind == PUBLISHABLE:
            allows = (f"app ids {', '.join(t.app_ids)}; origins "
                      f"{', '.join(t.origins) or 'none'}; rate {describe_rate(t.rate)}")
            rows.append((t.name, f"publishable {t.key}", allows, t.created_at))
        else:
            rows.append((t.name, "token", ", ".join(t.scopes), t.created_at))
    print_table(["name", "kind", "allows", "created"], rows)


@app.command("revoke", epilog=epilog("flywheel token revoke collector"))
def revoke_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The token's name.")],
) -> None:
    """Delete a token or key: running servers refuse it within a second, in every worker."""
    from flywheel._core.errors import InputError

    with open_project(ctx) as project:
        deleted = project.metadata.delete_token(name)
    if not deleted:
        raise InputError(f"no token named '{name}'", hint="`flywheel token list` shows them")
    note(f"token '{name}' revoked")


def register(root: typer.Typer) -> None:
    add_group(root, app)
