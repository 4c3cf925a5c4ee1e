"""`flywheel demo`: the whole loop on the shop example (see `flywheel.demo.loop`)."""

from flywheel.demo.loop import LIVE_DAYS, DemoOptions, DemoResult, run_demo

__all__ = ["LIVE_DAYS", "DemoOptions", "DemoResult", "run_demo"]
