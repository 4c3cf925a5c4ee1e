"""A simulated shop: realistic, seeded event traffic for the example project and the demo.

`simulate_shop(days=..., seed=...)` yields page views, cart adds and purchases as the
envelopes Flywheel ingests; `write_ndjson` and `post_events` send them somewhere.
"""

from flywheel.simulate.config import VENDOR, ShopConfig, schema_key
from flywheel.simulate.malformed import EXPECTED_REASON, MALFORMATIONS
from flywheel.simulate.shop import ShopSimulation, SimulationSummary, simulate_shop
from flywheel.simulate.sinks import PostReport, post_events, write_ndjson

__all__ = [
    "EXPECTED_REASON",
    "MALFORMATIONS",
    "VENDOR",
    "PostReport",
    "ShopConfig",
    "ShopSimulation",
    "SimulationSummary",
    "post_events",
    "schema_key",
    "simulate_shop",
    "write_ndjson",
]
