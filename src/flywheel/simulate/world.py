"""The shop's population: users who differ in how keen they are, products whose
popularity follows a power law and whose prices are log-normal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEVICES", "SOURCES", "Catalog", "Users", "make_catalog", "make_users"]

SOURCES = ("search", "social", "email", "direct", "partner")
"""Traffic sources; `partner` appears only from the drift day."""
DEVICES = ("desktop", "mobile", "tablet")


@dataclass(frozen=True, slots=True)
class Users:
    propensity: np.ndarray
    """Latent keenness (standard normal): more sessions, more carts, more purchases."""
    sessions_per_day: np.ndarray
    device: np.ndarray
    """Index into DEVICES: each user mostly shops on one device."""


@dataclass(frozen=True, slots=True)
class Catalog:
    popularity: np.ndarray
    """Probability of each product being viewed (Zipf over a shuffled ranking)."""
    price: np.ndarray
    appeal: np.ndarray
    """How much better than its price a product sells (normal, hidden)."""


def make_users(rng: np.random.Generator, count: int) -> Users:
    propensity = rng.standard_normal(count)
    # Keen users come back more often, so past activity tells something about them.
    rate = 0.35 * np.exp(0.45 * propensity + 0.5 * rng.standard_normal(count))
    device = rng.choice(len(DEVICES), size=count, p=[0.45, 0.45, 0.10])
    return Users(propensity=propensity, sessions_per_day=np.minimum(rate, 6.0), device=device)


def make_catalog(rng: np.random.Generator, count: int) -> Catalog:
    ranks = rng.permutation(count) + 1
    weights = 1.0 / ranks.astype(float) ** 1.07
    price = np.round(np.exp(rng.normal(3.2, 0.75, count)), 2).clip(0.99, None)
    return Catalog(
        popularity=weights / weights.sum(), price=price, appeal=rng.normal(0.0, 0.6, count)
    )
