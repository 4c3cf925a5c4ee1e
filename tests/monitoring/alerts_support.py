"""What the alert tests share: a real local HTTP receiver, a clock the test moves, and
monitor results built by hand."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flywheel.monitoring.results import MonitorResult, Status

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: the bodies it was posted, and what it answers."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Status codes to answer, in turn; then 200."""
    delay: float = 0.0


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.delay:
                time.sleep(state.delay)  # a slow receiver, for the client's timeout
            with lock:
                state.bodies.append(json.loads(body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Clock:
    """Now, as the test sets it."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, by: dt.timedelta) -> None:
        self.now += by


def result(window: int = 0, *, subject: str = "price", status: Status = "red",
           value: float = 0.31, monitor: str = "purchase_drift") -> MonitorResult:
    start = T0 - dt.timedelta(days=1) + window * HOUR
    return MonitorResult(monitor=monitor, kind="drift", window_start=start,
                         window_end=start + HOUR, subject=subject, statistic="psi",
                         value=value, threshold=0.2, status=status, rows=500)


def poll(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
