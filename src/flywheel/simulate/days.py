"""One day of the shop at a time, as columns (numpy arrays), in event-time order."""

from __future__ import annotations

import datetime as dt

import numpy as np

from flywheel.simulate.behaviour import (
    HOUR_WEIGHTS,
    cart_probability,
    purchase_probability,
    source_shares,
)
from flywheel.simulate.config import ShopConfig
from flywheel.simulate.world import DEVICES, SOURCES, make_catalog, make_users

__all__ = ["ADD_TO_CART", "COLUMNS", "KINDS", "PAGE_VIEW", "PURCHASE", "Columns", "DayMaker"]

PAGE_VIEW, ADD_TO_CART, PURCHASE = 0, 1, 2
KINDS = ("page_view", "add_to_cart", "purchase")
COLUMNS = (
    "time",
    "kind",
    "user",
    "session",
    "product",
    "price",
    "quantity",
    "order",
    "source",
    "device",
)
Columns = dict[str, np.ndarray]

_SECOND = 1_000_000  # times are microseconds since the Unix epoch
_DAY = 86_400 * _SECOND
_PURCHASE_WINDOW = 30 * 60 * _SECOND


class DayMaker:
    """Makes each day's events; what spills past midnight (a late purchase) is kept for the
    next day, so that the whole stream stays in event-time order."""

    def __init__(self, *, config: ShopConfig) -> None:
        self._config = config
        self._rng = np.random.default_rng(config.seed)
        self.users = make_users(self._rng, config.users)
        self.catalog = make_catalog(self._rng, config.products)
        self._start = int(
            (config.start - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
        )
        self._sessions = 0
        self._orders = 0
        self._carry: Columns = _empty()

    def day(self, day: int) -> Columns:
        """Events of day `day` (0-based) in time order; the last day also flushes the rest."""
        made = _concat([self._carry, self._make(day)])
        order = np.lexsort((made["kind"], made["time"]))
        made = {k: v[order] for k, v in made.items()}
        if day == self._config.days - 1:
            self._carry = _empty()
            return made
        cut = int(np.searchsorted(made["time"], self._start + (day + 1) * _DAY, "left"))
        self._carry = {k: v[cut:] for k, v in made.items()}
        return {k: v[:cut] for k, v in made.items()}

    def _make(self, day: int) -> Columns:
        config, rng, users = self._config, self._rng, self.users
        drifted = config.drift_from_day is not None and day >= config.drift_from_day
        user = np.repeat(np.arange(config.users), rng.poisson(users.sessions_per_day))
        count = len(user)
        session = self._sessions + np.arange(count)
        self._sessions += count
        hour = rng.choice(24, size=count, p=HOUR_WEIGHTS)
        start = (
            self._start
            + day * _DAY
            + hour * 3600 * _SECOND
            + rng.integers(0, 3600 * _SECOND, count)
        )
        source = rng.choice(len(SOURCES), size=count, p=source_shares(drifted))
        device = np.where(
            rng.random(count) < 0.85, users.device[user], rng.integers(0, len(DEVICES), count)
        )
        views = self._views(user, session, start, source, device, drifted)
        carts = self._carts(views)
        return _concat([views, carts, self._purchases(carts)])

    def _views(
        self,
        user: np.ndarray,
        session: np.ndarray,
        start: np.ndarray,
        source: np.ndarray,
        device: np.ndarray,
        drifted: bool,
    ) -> Columns:
        rng = self._rng
        pages = np.minimum(rng.geometric(0.33, len(user)), 25)
        of = np.repeat(np.arange(len(user)), pages)
        gaps = (rng.exponential(40 * _SECOND, len(of)) + _SECOND).astype(np.int64)
        ends = np.cumsum(gaps)
        firsts = np.cumsum(pages) - pages
        offset = np.repeat(ends[firsts] - gaps[firsts], pages)
        product = rng.choice(self._config.products, size=len(of), p=self.catalog.popularity)
        price = self.catalog.price[product] * (1.3 if drifted else 1.0)
        return {
            "time": start[of] + ends - offset,
            "kind": np.full(len(of), PAGE_VIEW),
            "user": user[of],
            "session": session[of],
            "product": product,
            "price": np.round(price, 2),
            "quantity": np.zeros(len(of), np.int64),
            "order": np.full(len(of), -1),
            "source": source[of],
            "device": device[of],
        }

    def _carts(self, views: Columns) -> Columns:
        rng = self._rng
        chance = cart_probability(
            self.users.propensity[views["user"]],
            self.catalog.appeal[views["product"]],
            views["price"],
        )
        picked = _take(views, np.flatnonzero(rng.random(len(chance)) < chance))
        count = len(picked["time"])
        picked["time"] = picked["time"] + (rng.exponential(15 * _SECOND, count) + _SECOND).astype(
            np.int64
        )
        picked["kind"] = np.full(count, ADD_TO_CART)
        picked["quantity"] = 1 + rng.poisson(0.3, count)
        return picked

    def _purchases(self, carts: Columns) -> Columns:
        rng = self._rng
        chance = purchase_probability(
            self.users.propensity[carts["user"]],
            self.catalog.appeal[carts["product"]],
            carts["price"],
            carts["source"],
            carts["device"],
        )
        bought = _take(carts, np.flatnonzero(rng.random(len(chance)) < chance))
        count = len(bought["time"])
        delay = np.minimum(
            rng.exponential(4 * 60 * _SECOND, count) + 30 * _SECOND, _PURCHASE_WINDOW - 60 * _SECOND
        )
        bought["time"] = bought["time"] + delay.astype(np.int64)
        bought["kind"] = np.full(count, PURCHASE)
        bought["order"] = self._orders + np.arange(count)
        self._orders += count
        return bought


def _take(columns: Columns, rows: np.ndarray) -> Columns:
    return {k: v[rows] for k, v in columns.items()}


def _empty() -> Columns:
    return {k: np.zeros(0, np.float64 if k == "price" else np.int64) for k in COLUMNS}


def _concat(parts: list[Columns]) -> Columns:
    return {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS}
