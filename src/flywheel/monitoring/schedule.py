"""Monitors on their declared schedule, beside the server: one background thread in the
serving process (not one per worker), evaluating each monitor when its `schedule` has
passed since its last evaluation, and the retraining policies that have a schedule.

A failed evaluation is logged and tried again at the next period; it never stops serving.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

__all__ = ["MonitorSchedule"]

_LOG = logging.getLogger("flywheel.monitoring")


class MonitorSchedule:
    def __init__(self, *, schedules: Mapping[str, dt.timedelta],
                 run: Callable[[Sequence[str]], object],
                 run_policies: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._periods = {name: period.total_seconds() for name, period in schedules.items()}
        self._run = run
        self._run_policies = run_policies
        self._clock = clock
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> list[str]:
        """The monitors whose period has passed since they last ran (all, at first)."""
        now = self._clock()
        return [name for name, period in self._periods.items()
                if name not in self._last or now - self._last[name] >= period]

    def tick(self) -> list[str]:
        """Evaluate what is due; returns the monitors evaluated."""
        names = self.due()
        now = self._clock()
        if names:
            try:
                self._run(names)
            except Exception as exc:  # a broken evaluation must not stop the server
                _LOG.warning("monitors %s: evaluation failed: %s", ", ".join(names), exc)
            for name in names:
                self._last[name] = now
        if self._run_policies is not None:
            try:
                self._run_policies()
            except Exception as exc:
                _LOG.warning("scheduled retraining failed: %s", exc)
        return names

    def start(self) -> None:
        if self._thread is not None or not (self._periods or self._run_policies):
            return
        self._thread = threading.Thread(target=self._loop, name="flywheel-monitors",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        # The first evaluation comes at once, even if the server is stopping already.
        while True:
            self.tick()
            if self._stop.wait(self._next_wait()):
                return

    def _next_wait(self) -> float:
        """Seconds until the next monitor is due (at most a minute: policies are checked)."""
        now = self._clock()
        waits = [self._last.get(name, now) + period - now
                 for name, period in self._periods.items()]
        return max(1.0, min([60.0, *waits]))
