"""`flywheel simulate`: a seeded shop's traffic, to a file or to a running collector."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flywheel.cli.groups import epilog
from flywheel.cli.output import err, note
from flywheel.cli.progress import rows_progress

if TYPE_CHECKING:
    from flywheel.simulate import ShopSimulation

EPILOG = epilog(
    "flywheel simulate --days 4 --out events.ndjson && flywheel ingest events.ndjson",
    "flywheel simulate --days 14 --drift-from-day 10 --malformed-share 0.02 --out - "
    "| flywheel ingest -",
    "flywheel simulate --days 2 --url http://127.0.0.1:8000 --token $TOKEN",
    "flywheel simulate --days 1 --url http://127.0.0.1:8000 --protocol snowplow",
    note="The shop sells --products products (a few are very popular: Zipf) at log-normal "
    "prices to --users users, who differ in how keen they are. Sessions follow a daily "
    "cycle, busiest in the evening; each brings page views, some add to cart, and a cart "
    "add is bought within 30 minutes more often for keen users, cheap products and some "
    "traffic sources, so a model can learn it. From --drift-from-day a partner source "
    "converts far worse and prices rise 30%: the drift monitor's cue. --malformed-share "
    "of events are sent broken (prices as text, missing fields, unknown schemas), to land "
    "in bad rows. The same options and --seed give the same events; without --start the "
    "days end at the current hour, so that what is served online is fresh.",
)


def simulate_command(
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Days of traffic.")] = 7,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed: the same seed gives the same events.")
    ] = 0,
    users: Annotated[int, typer.Option("--users", min=1, help="Shoppers.")] = 2_000,
    products: Annotated[int, typer.Option("--products", min=1, help="Products.")] = 500,
    drift_from_day: Annotated[
        int | None,
        typer.Option(
            "--drift-from-day",
            metavar="DAY",
            min=0,
            help="From this day (0 is the first) a partner source and 30% higher prices.",
        ),
    ] = None,
    malformed_share: Annotated[
        float,
        typer.Option(
            "--malformed-share",
            metavar="SHARE",
            min=0.0,
            max=1.0,
            help="Share of events sent broken, e.g. 0.02.",
        ),
    ] = 0.0,
    start: Annotated[
        dt.datetime | None,
        typer.Option(
            "--start",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
            help="First day's start, in UTC (default: --days days before the current hour).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", metavar="FILE", help="Write NDJSON to FILE (- for stdout)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="POST to a running collector (flywheel serve), e.g. http://127.0.0.1:8000.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            envvar="FLYWHEEL_TOKEN",
            show_envvar=False,
            help="Bearer token for --url (a token with the ingest scope).",
        ),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            metavar="NAME",
            help="How --url is sent to: flywheel (JSON arrays to /v1/events) or snowplow "
            "(tracker payloads to /com.snowplowanalytics.snowplow/tp2).",
        ),
    ] = "flywheel",
) -> None:
    """Generate a simulated shop's events (page views, cart adds, purchases)."""
    from flywheel._core.errors import InputError
    from flywheel.simulate import ShopConfig, ShopSimulation

    if (out is None) == (url is None):
        raise InputError("give one of --out FILE and --url URL", hint="e.g. --out events.ndjson")
    if token is not None and url is None:
        raise InputError("--token goes with --url")
    from flywheel.simulate.sinks import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise InputError(f"--protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    if url is not None and not url.startswith(("http://", "https://")):
        raise InputError(f"--url {url!r} is not an http:// or https:// URL")
    if drift_from_day is not None and drift_from_day >= days:
        raise InputError(
            f"--drift-from-day {drift_from_day} is not within --days {days} (0 to {days - 1})"
        )
    begin = _start(start, days)
    simulation = ShopSimulation(
        config=ShopConfig(
            days=days,
            seed=seed,
            start=begin,
            users=users,
            products=products,
            drift_from_day=drift_from_day,
            malformed_share=malformed_share,
        )
    )
    _send(simulation, out, url, token, protocol)
    err().print(
        f"simulated {simulation.summary.line()} from {begin.isoformat()}",
        markup=False,
        soft_wrap=True,
    )


def _start(start: dt.datetime | None, days: int) -> dt.datetime:
    if start is not None:
        return start.replace(tzinfo=dt.UTC)
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return hour - dt.timedelta(days=days)


def _send(simulation: ShopSimulation, out: str | None, url: str | None, token: str | None,
          protocol: str = "flywheel") -> None:
    from flywheel.simulate import post_events, write_ndjson

    with rows_progress("simulating") as shown:

        def advance(done: int) -> None:
            shown(done, None)

        if out == "-":
            write_ndjson(simulation, sys.stdout, on_progress=advance)
        elif out is not None:
            write_ndjson(simulation, Path(out), on_progress=advance)
        else:
            assert url is not None
            report = post_events(simulation, url, token=token, on_progress=advance,
                                 protocol=protocol)
            note(
                f"collector: {report.accepted:,} accepted, {report.rejected:,} rejected "
                f"(in bad rows), {report.duplicates:,} duplicates"
            )


def register(app: typer.Typer) -> None:
    app.command(
        "simulate",
        epilog=EPILOG,
        short_help="Generate a simulated shop's traffic (to a file or a collector).",
    )(simulate_command)
