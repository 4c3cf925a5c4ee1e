"""Shared benchmark plumbing: wall time, CPU time and peak memory of a block of work."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass
class Measure:
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def rate(self, count: int) -> float:
        return count / self.wall if self.wall else float("nan")

    def rate_per_core(self, count: int) -> float:
        return count / self.cpu if self.cpu else float("nan")


class PeakRss:
    """Samples the resident set size of one or more processes every few milliseconds."""

    def __init__(self, pids: list[int], interval: float = 0.01) -> None:
        self._procs = [psutil.Process(p) for p in pids]
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = 0
        for proc in self._procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@contextmanager
def measure(pids: list[int] | None = None) -> Iterator[Measure]:
    """Time a block; CPU time is this process's (user + system, all threads)."""
    result = Measure()
    before = os.times()
    start = time.perf_counter()
    with PeakRss(pids or [os.getpid()]) as peak:
        yield result
    result.wall = time.perf_counter() - start
    after = os.times()
    result.cpu = (after.user - before.user) + (after.system - before.system)
    result.peak_rss = peak.peak


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"{memory:.0f} GiB, Python {platform.python_version()}")


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    """`target(*args, queue)` in a fresh (spawned) process, so its peak memory is its
    own; returns what it put on the queue, or raises if it died without answering."""
    import multiprocessing
    import queue as queues

    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    while True:
        try:
            result: dict[str, Any] = queue.get(timeout=1)
            break
        except queues.Empty:
            if process.is_alive():
                continue
            try:  # it may have answered just before exiting
                result = queue.get(timeout=5)
                break
            except queues.Empty:  # died without an answer (an error, or killed)
                raise RuntimeError(f"{target.__name__} failed (exit code "
                                   f"{process.exitcode})") from None
    process.join()
    return result
