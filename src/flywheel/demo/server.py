"""`flywheel serve` of the demo's project, in its own process: the collector, the model
server and the feedback route the demo talks to over HTTP, as any client would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from flywheel._core.errors import FlywheelError

__all__ = ["START_SECONDS", "DemoServer"]

START_SECONDS = 60.0


class DemoServer:
    """Started on a free port of 127.0.0.1 (no tokens needed on loopback); its output goes
    to `log`, so a full pipe never stalls it."""

    def __init__(self, *, project: Path, log: Path) -> None:
        self._project = project
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> DemoServer:
        self._log.parent.mkdir(parents=True, exist_ok=True)
        output = self._log.open("wb")
        command = [sys.executable, "-c", "from flywheel.cli.main import run; run()",
                   "serve", "--port", "0",
                   "--project", str(self._project)]
        self._process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                         env={**os.environ, "FLYWHEEL_NO_PROGRESS": "1"})
        output.close()
        deadline = time.monotonic() + START_SECONDS
        while not self.url:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", self._log.read_text(errors="replace"))
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}"
            self._check_alive(deadline)
            time.sleep(0.05)
        while not self._healthy():
            self._check_alive(deadline)
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def _check_alive(self, deadline: float) -> None:
        assert self._process is not None
        if self._process.poll() is not None or time.monotonic() > deadline:
            tail = self._log.read_text(errors="replace").strip().splitlines()[-1:]
            raise FlywheelError(f"the demo's server did not start: {' '.join(tail) or 'no output'}",
                                hint=f"see {self._log}")

    def stop(self) -> None:
        """A clean stop (SIGTERM): the server commits every prediction it logged."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(90)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def wait(self) -> None:
        """Until the server stops (Ctrl-C)."""
        if self._process is not None:
            self._process.wait()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
