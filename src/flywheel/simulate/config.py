"""What a simulated shop looks like: its size, its days, its drift and its dirt."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flywheel._core.errors import InputError

__all__ = ["DEFAULT_START", "VENDOR", "ShopConfig", "schema_key"]

VENDOR = "com.flywheel.shop"
"""The vendor of the shop's event schemas (`schemas/com.flywheel.shop/...`)."""


DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Where a simulation starts unless told otherwise (`flywheel simulate` starts `days`
before the current hour instead)."""


def schema_key(name: str, version: str = "1-0-0") -> str:
    """The Iglu URI of one of the shop's events, e.g. `schema_key("purchase")`."""
    return f"iglu:{VENDOR}/{name}/jsonschema/{version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopConfig:
    """One simulated shop; the same config (seed included) gives the same events."""

    days: int
    seed: int = 0
    start: dt.datetime = DEFAULT_START
    users: int = 2_000
    products: int = 500
    drift_from_day: int | None = None
    """From this day on (0-based), a `partner` traffic source converts far worse and prices
    are 30% higher; None: no drift."""
    malformed_share: float = 0.0
    """The share of events sent broken, as real trackers do (bad types, missing fields,
    unknown schemas)."""

    def __post_init__(self) -> None:
        if self.days < 1:
            raise InputError(f"days must be at least 1, not {self.days}")
        if self.users < 1 or self.products < 1:
            raise InputError("users and products must be at least 1")
        if not 0.0 <= self.malformed_share <= 1.0:
            raise InputError(f"malformed share must be in [0, 1], not {self.malformed_share}")
        if self.drift_from_day is not None and self.drift_from_day < 0:
            raise InputError(f"drift day must be 0 or more, not {self.drift_from_day}")
        if self.start.tzinfo is None:
            raise InputError("start must have a time zone, e.g. 2026-01-01T00:00:00+00:00")
