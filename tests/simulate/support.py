"""What a test needs to tell simulated events apart: their kind, and how one was broken."""

from __future__ import annotations

import datetime as dt
from typing import Any

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def kind_of(event: dict[str, Any]) -> str:
    return str(event["schema"]).split("/")[1]


def malformation(event: dict[str, Any]) -> str | None:
    """How the simulator broke `event`, told from the event alone (None: well formed)."""
    if event["schema"].endswith("/1-0-9"):
        return "unknown_version"
    if kind_of(event) not in ("page_view", "add_to_cart", "purchase"):
        return "unknown_schema"
    if isinstance(event["data"]["price"], str):
        return "price_as_text"
    if "user_id" not in event["data"]:
        return "missing_field"
    return None


def when(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["event_time"].replace("Z", "+00:00"))
