"""How shoppers behave: when sessions start, where they come from, what they add to
their cart and what they buy. The purchase depends on what a model can know at the time
of the cart add (the user's past activity, the product's price and popularity, the
session's source and device), plus what it cannot (a latent keenness, a hidden appeal)."""

from __future__ import annotations

import numpy as np

__all__ = ["HOUR_WEIGHTS", "cart_probability", "purchase_probability", "source_shares"]

_HOURS = np.arange(24)
HOUR_WEIGHTS = (
    0.15
    + np.exp(-((_HOURS - 20.5) ** 2) / 6.0) * 2.2
    + np.exp(-((_HOURS - 12.5) ** 2) / 5.0) * 0.8
    + (_HOURS >= 7) * (_HOURS <= 23) * 0.4
)
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
"""Share of sessions starting in each hour (UTC): quiet at night, a lunch bump, busiest
in the evening."""

# search, social, email, direct, partner: intent differs by where a visitor came from.
_SOURCE_EFFECT = np.array([0.9, -1.3, 1.3, 0.0, -2.5])
_DEVICE_EFFECT = np.array([0.3, -0.4, 0.0])  # desktop, mobile, tablet
_MEDIAN_LOG_PRICE = 3.2


def source_shares(drifted: bool) -> np.ndarray:
    """The traffic mix; from the drift day a partner sends 30% of the sessions."""
    base = np.array([0.35, 0.25, 0.10, 0.30, 0.0])
    if not drifted:
        return base
    return np.append(base[:4] * 0.7, 0.3)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def cart_probability(propensity: np.ndarray, appeal: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Chance that one page view ends in an add to cart."""
    return _sigmoid(
        -2.1 + 0.6 * propensity + 0.5 * appeal - 0.35 * (np.log(price) - _MEDIAN_LOG_PRICE)
    )


def purchase_probability(
    propensity: np.ndarray,
    appeal: np.ndarray,
    price: np.ndarray,
    source: np.ndarray,
    device: np.ndarray,
) -> np.ndarray:
    """Chance that an add to cart is bought within 30 minutes. Not linear on purpose:
    expensive items on a phone are rarely bought there, and a price threshold matters more
    than the price itself, so a tree model has something to find."""
    log_price = np.log(price) - _MEDIAN_LOG_PRICE
    expensive = price > 60.0
    logit = (
        -0.9
        + 1.1 * propensity
        + 0.5 * appeal
        - 0.2 * log_price
        - 0.4 * expensive
        + _SOURCE_EFFECT[source]
        + _DEVICE_EFFECT[device]
        - 1.6 * (expensive & (device == 1))
    )
    return _sigmoid(logit)
