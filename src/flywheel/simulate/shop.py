"""`simulate_shop`: the shop's events, as envelopes Flywheel ingests, in event-time order."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flywheel.simulate.config import DEFAULT_START, ShopConfig, schema_key
from flywheel.simulate.days import ADD_TO_CART, KINDS, PAGE_VIEW, Columns, DayMaker
from flywheel.simulate.malformed import MALFORMATIONS, malform
from flywheel.simulate.world import DEVICES, SOURCES

__all__ = ["ShopSimulation", "SimulationSummary", "simulate_shop"]

_Event = dict[str, Any]


@dataclass(slots=True)
class SimulationSummary:
    """What a simulation has yielded so far."""

    by_kind: Counter[str] = field(default_factory=Counter)
    """Well-formed events per kind (page_view, add_to_cart, purchase)."""
    malformed: Counter[str] = field(default_factory=Counter)
    """Broken events per malformation (see `MALFORMATIONS`)."""

    @property
    def events(self) -> int:
        return sum(self.by_kind.values()) + sum(self.malformed.values())

    def line(self) -> str:
        kinds = ", ".join(f"{self.by_kind[k]:,} {k}" for k in KINDS)
        return f"{self.events:,} events: {kinds}; {sum(self.malformed.values()):,} malformed"


class ShopSimulation:
    """The events of a simulated shop, day by day; iterate once. `summary` counts them."""

    def __init__(self, *, config: ShopConfig) -> None:
        self.config = config
        self.summary = SimulationSummary()
        self._schemas = [schema_key(kind) for kind in KINDS]

    def __iter__(self) -> Iterator[_Event]:
        maker = DayMaker(config=self.config)
        # Malformations have their own generator, so that the clean events of a seed are
        # the same whatever the malformed share.
        dirt = np.random.default_rng([self.config.seed, 1])
        serial = 0
        for day in range(self.config.days):
            columns = maker.day(day)
            count = len(columns["time"])
            broken = dirt.random(count) < self.config.malformed_share
            how = dirt.integers(0, len(MALFORMATIONS), count)
            for row, event in enumerate(self._events(columns, serial)):
                if broken[row]:
                    kind = int(how[row])
                    self.summary.malformed[MALFORMATIONS[kind]] += 1
                    yield malform(event, kind)
                else:
                    self.summary.by_kind[KINDS[int(columns["kind"][row])]] += 1
                    yield event
            serial += count

    def _events(self, columns: Columns, serial: int) -> Iterator[_Event]:
        times = np.datetime_as_string(
            columns["time"].astype("datetime64[us]"), unit="ms", timezone="UTC"
        ).tolist()
        seed = self.config.seed
        rows = zip(
            times,
            columns["kind"].tolist(),
            columns["user"].tolist(),
            columns["session"].tolist(),
            columns["product"].tolist(),
            columns["price"].tolist(),
            columns["quantity"].tolist(),
            columns["order"].tolist(),
            columns["source"].tolist(),
            columns["device"].tolist(),
            strict=True,
        )
        for n, (time, kind, user, session, product, price, qty, order, source, device) in enumerate(
            rows, serial
        ):
            data: dict[str, Any] = {
                "user_id": f"u{user}",
                "session_id": f"s{seed}-{session}",
                "product_id": f"p{product}",
                "price": price,
            }
            if kind == PAGE_VIEW:
                data["traffic_source"] = SOURCES[source]
                data["device"] = DEVICES[device]
            else:
                data["quantity"] = qty
                if kind != ADD_TO_CART:
                    data["order_id"] = f"o{seed}-{order}"
            yield {
                "schema": self._schemas[kind],
                "data": data,
                "event_id": f"shop-{seed}-{n}",
                "event_time": time,
            }


def simulate_shop(
    *,
    days: int,
    seed: int = 0,
    start: dt.datetime = DEFAULT_START,
    users: int = 2_000,
    products: int = 500,
    drift_from_day: int | None = None,
    malformed_share: float = 0.0,
) -> Iterator[_Event]:
    """The events of a simulated shop (see `ShopConfig`), in event-time order, the same
    for the same arguments."""
    config = ShopConfig(
        days=days,
        seed=seed,
        start=start,
        users=users,
        products=products,
        drift_from_day=drift_from_day,
        malformed_share=malformed_share,
    )
    return iter(ShopSimulation(config=config))
