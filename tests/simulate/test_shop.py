"""The simulated shop: deterministic by seed, in time order, with the behaviour it claims."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel._core.errors import InputError
from flywheel.simulate import (
    MALFORMATIONS,
    ShopConfig,
    ShopSimulation,
    schema_key,
    simulate_shop,
)
from tests.simulate.support import START, kind_of, malformation, when

SMALL = {"users": 60, "products": 30, "start": START}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), days=st.integers(1, 3), share=st.sampled_from([0.0, 0.1]))
def test_a_seed_gives_the_same_events_in_time_order(seed: int, days: int, share: float) -> None:
    first = list(simulate_shop(days=days, seed=seed, malformed_share=share, **SMALL))
    assert first == list(simulate_shop(days=days, seed=seed, malformed_share=share, **SMALL))
    times = [when(e) for e in first]
    assert times == sorted(times)
    assert all(START <= t < START + dt.timedelta(days=days, hours=1) for t in times)
    assert len({e["event_id"] for e in first}) == len(first)


def test_another_seed_gives_other_events() -> None:
    one = list(simulate_shop(days=1, seed=1, **SMALL))
    two = list(simulate_shop(days=1, seed=2, **SMALL))
    assert [e["data"] for e in one] != [e["data"] for e in two]


def test_the_malformed_share_does_not_change_the_clean_events() -> None:
    size = {**SMALL, "users": 800}
    clean = {e["event_id"]: e for e in simulate_shop(days=2, seed=5, **size)}
    dirty = list(simulate_shop(days=2, seed=5, malformed_share=0.3, **size))
    assert [e["event_id"] for e in dirty] == list(clean)
    kept = [e for e in dirty if malformation(e) is None]
    assert all(e == clean[e["event_id"]] for e in kept)
    assert len(dirty) > 2000
    assert 0.27 < 1 - len(kept) / len(dirty) < 0.33


@pytest.fixture(scope="module")
def week() -> list[dict[str, Any]]:
    return list(simulate_shop(days=7, seed=3, users=1500, products=300, start=START))


def test_events_have_the_fields_of_their_kind(week: list[dict[str, Any]]) -> None:
    fields = {
        "page_view": {"user_id", "session_id", "product_id", "price", "traffic_source", "device"},
        "add_to_cart": {"user_id", "session_id", "product_id", "price", "quantity"},
        "purchase": {"user_id", "session_id", "product_id", "price", "quantity", "order_id"},
    }
    for event in week:
        assert event["schema"] == schema_key(kind_of(event))
        assert set(event["data"]) == fields[kind_of(event)]
        assert isinstance(event["data"]["price"], float) and event["data"]["price"] > 0
        assert set(event) == {"schema", "data", "event_id", "event_time"}


def test_kinds_and_their_shares(week: list[dict[str, Any]]) -> None:
    kinds = Counter(kind_of(e) for e in week)
    assert kinds["page_view"] > 4 * kinds["add_to_cart"] > 0
    assert 0.2 < kinds["purchase"] / kinds["add_to_cart"] < 0.8
    sources = Counter(e["data"]["traffic_source"] for e in week if kind_of(e) == "page_view")
    assert set(sources) == {"search", "social", "email", "direct"}


def test_a_purchase_follows_a_cart_add_of_its_session_within_30_minutes(
    week: list[dict[str, Any]],
) -> None:
    carts: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    viewed: set[tuple[str, str]] = set()
    for event in week:
        key = (event["data"]["session_id"], event["data"]["product_id"])
        if kind_of(event) == "page_view":
            viewed.add(key)
        elif kind_of(event) == "add_to_cart":
            assert key in viewed  # a cart add follows a view of the product
            carts[key].append(when(event))
        else:
            assert any(
                dt.timedelta(0) < when(event) - t <= dt.timedelta(minutes=30) for t in carts[key]
            )


def test_popularity_is_skewed_and_sessions_peak_in_the_evening(week: list[dict[str, Any]]) -> None:
    views = Counter(e["data"]["product_id"] for e in week if kind_of(e) == "page_view")
    ranked = sorted(views.values(), reverse=True)
    assert sum(ranked[:30]) > 0.5 * sum(ranked)  # the top 10% get most views
    starts: dict[str, dt.datetime] = {}
    for event in week:
        starts.setdefault(event["data"]["session_id"], when(event))
    hours = Counter(t.hour for t in starts.values())
    assert sum(hours[h] for h in range(18, 23)) > 3 * sum(hours[h] for h in range(1, 6))


def test_keen_users_buy_more_often(week: list[dict[str, Any]]) -> None:
    # What a model can learn from history: users who bought before buy again more.
    per_user: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in week:
        if kind_of(event) != "page_view":
            per_user[event["data"]["user_id"]][kind_of(event) == "purchase"] += 1
    rates = sorted((b / c, c) for c, b in per_user.values() if c >= 3)
    low, high = rates[: len(rates) // 4], rates[-len(rates) // 4 :]
    assert sum(r for r, _ in high) / len(high) > sum(r for r, _ in low) / len(low) + 0.3


def test_from_the_drift_day_a_partner_converts_worse_and_prices_rise() -> None:
    events = list(
        simulate_shop(days=6, seed=4, users=1500, products=200, start=START, drift_from_day=3)
    )
    drift = START + dt.timedelta(days=3)
    views = [e for e in events if kind_of(e) == "page_view"]
    before = [e for e in views if when(e) < drift]
    after = [e for e in views if when(e) >= drift]
    assert all(e["data"]["traffic_source"] != "partner" for e in before)
    partner = Counter(e["data"]["traffic_source"] for e in after)["partner"] / len(after)
    assert 0.2 < partner < 0.4
    price = {(e["data"]["product_id"], when(e) >= drift): e["data"]["price"] for e in views}
    ratios = [
        price[(p, True)] / price[(p, False)] for p, late in price if late and (p, False) in price
    ]
    assert ratios and all(1.29 < r < 1.31 for r in ratios)
    source_of = {e["data"]["session_id"]: e["data"]["traffic_source"] for e in after}
    carts: Counter[str] = Counter()
    bought: Counter[str] = Counter()
    for event in events:
        source = source_of.get(event["data"]["session_id"])
        if source is not None and kind_of(event) == "add_to_cart":
            carts[source] += 1
        elif source is not None and kind_of(event) == "purchase":
            bought[source] += 1
    assert bought["partner"] / carts["partner"] < 0.5 * bought["search"] / carts["search"]


def test_the_summary_counts_what_was_yielded() -> None:
    simulation = ShopSimulation(config=ShopConfig(days=2, seed=9, malformed_share=0.2, **SMALL))
    events = list(simulation)
    kinds = Counter(kind_of(e) for e in events if malformation(e) is None)
    broken = Counter(malformation(e) for e in events if malformation(e) is not None)
    assert simulation.summary.by_kind == kinds
    assert simulation.summary.malformed == broken
    assert set(broken) == set(MALFORMATIONS)
    assert simulation.summary.events == len(events)
    assert f"{kinds['purchase']:,} purchase" in simulation.summary.line()


@pytest.mark.parametrize(
    "options",
    [
        {"days": 0},
        {"days": 1, "users": 0},
        {"days": 1, "malformed_share": 1.5},
        {"days": 1, "drift_from_day": -1},
        {"days": 1, "start": dt.datetime(2026, 1, 1)},
    ],
)
def test_a_bad_config_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        ShopConfig(**options)


def test_generation_is_fast() -> None:
    simulation = ShopSimulation(
        config=ShopConfig(days=7, seed=0, users=20_000, products=2_000, start=START)
    )
    started = time.perf_counter()
    count = sum(1 for _ in simulation)
    rate = count / (time.perf_counter() - started)
    assert count > 150_000
    # About 450,000 events/s on a laptop; the bound leaves room for a busy test machine.
    assert rate > 100_000, f"{rate:,.0f} events/s"
