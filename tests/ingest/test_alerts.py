"""Bad-row rate alerts: a log line, a webhook, a command."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from flywheel.config import BadRowsAlertConfig
from flywheel.ingest.alerts import BadRowsAlarm


def alarm(**overrides: Any) -> BadRowsAlarm:
    config = BadRowsAlertConfig(**{"window_seconds": 60, "threshold": 0.1, "min_events": 10,
                                   "cooldown_seconds": 30, **overrides})
    return BadRowsAlarm(config, "shop")


def test_fires_only_past_the_threshold_over_the_window() -> None:
    a = alarm()
    a.observe(100, 10, now=1000)  # exactly 10%: not past it
    assert a.fired == []
    a.observe(10, 5, now=1001)  # 15 of 110
    assert len(a.fired) == 1 and a.fired[0].rejected == 15
    a.observe(100, 100, now=1010)  # within cooldown
    assert len(a.fired) == 1
    a.observe(100, 0, now=1100)  # the old buckets left the window: 0%
    a.observe(100, 50, now=1101)
    assert len(a.fired) == 2 and a.fired[1].received == 200


def test_needs_enough_events_to_judge() -> None:
    a = alarm(min_events=50)
    a.observe(5, 5, now=1)
    assert a.fired == []


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_delivers_to_a_webhook_and_a_command(webhook: tuple[str, list[dict[str, Any]]],
                                             tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    url, received = webhook
    out = tmp_path / "alert.json"
    script = tmp_path / "notify.sh"
    script.write_text(f"#!/bin/sh\ncat > {out}\n")
    script.chmod(0o755)
    a = alarm(webhook=url, command=str(script))
    with caplog.at_level("WARNING", logger="flywheel.alerts"):
        a.observe(20, 20, now=time.time())
    deadline = time.monotonic() + 10
    while (not received or not out.exists() or not out.read_text()) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert received and received[0]["alert"] == "bad_rows_rate"
    assert received[0]["rejected"] == 20
    assert json.loads(out.read_text())["rate"] == 1.0
    assert "bad rows alert [shop]" in caplog.text
