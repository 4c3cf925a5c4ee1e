"""Alert when the share of bad rows over a sliding window passes a threshold."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from flywheel.config import BadRowsAlertConfig

log = logging.getLogger("flywheel.alerts")


@dataclass(frozen=True, slots=True)
class BadRowsAlert:
    project: str
    received: int
    rejected: int
    window_seconds: float
    threshold: float

    @property
    def rate(self) -> float:
        return self.rejected / self.received if self.received else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"alert": "bad_rows_rate", "project": self.project, "received": self.received,
                "rejected": self.rejected, "rate": round(self.rate, 6),
                "threshold": self.threshold, "window_seconds": self.window_seconds}

    def text(self) -> str:
        return (f"bad rows alert [{self.project}]: {self.rejected} of {self.received} inputs "
                f"({self.rate:.1%}) rejected in the last {self.window_seconds:g}s "
                f"(threshold {self.threshold:.1%}); see `flywheel log bad-rows`")


class BadRowsAlarm:
    """Counts per second in a ring; fires at most once per cooldown."""

    def __init__(self, config: BadRowsAlertConfig, project: str) -> None:
        self._config = config
        self._project = project
        self._buckets: deque[list[float]] = deque()  # [second, received, rejected]
        self._last_fired = float("-inf")
        self._lock = threading.Lock()
        self.fired: list[BadRowsAlert] = []

    def observe(self, received: int, rejected: int, now: float | None = None) -> None:
        if received <= 0:
            return
        now = time.time() if now is None else now
        with self._lock:
            alert = self._update(received, rejected, now)
        if alert is not None:
            self._fire(alert)

    def _update(self, received: int, rejected: int, now: float) -> BadRowsAlert | None:
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += received
            self._buckets[-1][2] += rejected
        else:
            self._buckets.append([second, received, rejected])
        cfg = self._config
        while self._buckets and self._buckets[0][0] <= now - cfg.window_seconds:
            self._buckets.popleft()
        total = int(sum(b[1] for b in self._buckets))
        bad = int(sum(b[2] for b in self._buckets))
        if total < cfg.min_events or bad / total <= cfg.threshold:
            return None
        if now - self._last_fired < cfg.cooldown_seconds:
            return None
        self._last_fired = now
        return BadRowsAlert(self._project, total, bad, cfg.window_seconds, cfg.threshold)

    def _fire(self, alert: BadRowsAlert) -> None:
        self.fired.append(alert)
        log.warning(alert.text())
        if self._config.webhook or self._config.command:
            # Delivery must never slow or break ingestion: it runs beside it.
            threading.Thread(target=self._deliver, args=(alert,), daemon=True,
                             name="flywheel-alert").start()

    def _deliver(self, alert: BadRowsAlert) -> None:
        payload = alert.as_dict()
        if self._config.webhook:
            try:
                import httpx

                httpx.post(self._config.webhook, json={**payload, "text": alert.text()},
                           timeout=5.0).raise_for_status()
            except Exception as exc:
                log.error("bad rows alert: webhook %s failed: %s", self._config.webhook, exc)
        if self._config.command:
            env = {**os.environ, **{f"FLYWHEEL_ALERT_{k.upper()}": str(v)
                                    for k, v in payload.items()}}
            try:
                subprocess.run(shlex.split(self._config.command), input=json.dumps(payload),
                               text=True, env=env, timeout=30, check=True,
                               capture_output=True)
            except (OSError, subprocess.SubprocessError) as exc:
                log.error("bad rows alert: command %r failed: %s", self._config.command, exc)
