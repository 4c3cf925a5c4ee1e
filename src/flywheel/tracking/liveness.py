"""Whether the process that started a run is still there, so that a run whose process
died (killed, `os._exit`) is marked failed instead of `running` forever.

A run records the host, pid and start time of its process as tags. A reader on the same
host that finds the run still `running` checks that process: gone, or its pid now taken
by another process (a different start time), means the run can never finish. Runs
started on another host are left as they are: this host cannot see their process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

HOST_TAG = "flywheel.host"
PID_TAG = "flywheel.pid"
STARTED_TAG = "flywheel.process_started"
FAILURE_TAG = "flywheel.failure"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def process_tags() -> dict[str, str]:
    """Tags that identify this process, recorded with each run it starts."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid),
            STARTED_TAG: _process_start(pid) or ""}


def process_is_gone(tags: Mapping[str, str]) -> bool:
    """True only when the run's process certainly ended: same host, and its pid is free or
    belongs to a process that started at another time."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    started = tags.get(STARTED_TAG)
    now = _process_start(int(tags[PID_TAG]))
    if now is None:
        return True
    return bool(started) and now != started
