"""Delivering one alert: a log line, a webhook (HTTP POST of its JSON), or a command (its
JSON on standard input). Delivery never raises: it says whether it worked, and why not."""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flywheel._core.metadata.alerts import AlertRecord
from flywheel._core.text import first_line
from flywheel.monitoring.policy import ActionSpec

if TYPE_CHECKING:
    import httpx

__all__ = ["LOGGER", "Delivery", "alert_payload", "deliver"]

LOGGER = logging.getLogger("flywheel.monitoring.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    ok: bool
    detail: str
    """What the receiver answered, or why it failed (refused, HTTP 503, timed out ...)."""


def alert_payload(record: AlertRecord, *, suppressed: int = 0) -> dict[str, Any]:
    """The JSON body a webhook receives and a command reads: what fired, where and when.
    `suppressed`: alerts of the same monitor and action the cooldown held back since the
    one before this."""
    return {"alert_id": record.id, "monitor": record.monitor, "kind": record.kind,
            "action": record.action,
            "window": {"start": record.window_start.isoformat(),
                       "end": record.window_end.isoformat()},
            "subject": record.subject, "statistic": record.statistic, "value": record.value,
            "threshold": record.threshold, "status": record.status,
            "fired_at": record.fired_at.isoformat(), "attempt": record.attempts,
            "suppressed": suppressed}


def deliver(action: ActionSpec, payload: dict[str, Any], *,
            client: httpx.Client | None = None) -> Delivery:
    """Run `action` for one alert; failures are returned, not raised."""
    if action.kind == "webhook":
        return _webhook(str(action.target), payload, action.timeout, client)
    if action.kind == "command":
        return _command(tuple(action.target), payload, action.timeout)
    level = _LEVELS[str(action.target)]
    LOGGER.log(level, "alert %s: monitor %s, %s %s = %s (threshold %s) in [%s, %s): %s",
               payload["alert_id"], payload["monitor"], payload["subject"],
               payload["statistic"], payload["value"], payload["threshold"],
               payload["window"]["start"], payload["window"]["end"], payload["status"])
    return Delivery(ok=True, detail=f"logged ({action.target})")


def _webhook(url: str, payload: dict[str, Any], timeout: float,
             client: httpx.Client | None) -> Delivery:
    import httpx  # only a project with webhooks pays for it

    try:
        if client is not None:
            response = client.post(url, json=payload, timeout=timeout)
        else:
            response = httpx.post(url, json=payload, timeout=timeout)
    except httpx.TimeoutException:
        return Delivery(ok=False, detail=f"timed out after {timeout:g} s")
    except httpx.ConnectError as exc:
        return Delivery(ok=False, detail=f"cannot connect: {_short(exc)}")
    except httpx.HTTPError as exc:
        return Delivery(ok=False, detail=f"{type(exc).__name__}: {_short(exc)}")
    answer = f"HTTP {response.status_code}"
    if response.is_success:
        return Delivery(ok=True, detail=answer)
    body = _short(response.text) if response.text.strip() else ""
    return Delivery(ok=False, detail=f"{answer}: {body}" if body else answer)


def _command(argv: tuple[str, ...], payload: dict[str, Any], timeout: float) -> Delivery:
    try:
        done = subprocess.run(argv, input=json.dumps(payload).encode(), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Delivery(ok=False, detail=f"{argv[0]}: timed out after {timeout:g} s")
    except OSError as exc:
        return Delivery(ok=False, detail=f"{argv[0]}: {exc.strerror or exc}")
    if done.returncode == 0:
        return Delivery(ok=True, detail=f"{argv[0]}: exit 0")
    said = first_line(done.stderr.decode(errors="replace")
                      or done.stdout.decode(errors="replace"), _DETAIL_CHARS)
    return Delivery(ok=False, detail=f"{argv[0]}: exit {done.returncode}"
                    + (f": {said}" if said else ""))


def _short(value: BaseException | str) -> str:
    return first_line(value, _DETAIL_CHARS)
