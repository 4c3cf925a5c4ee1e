"""A lean HTTP/1.1 load generator on raw asyncio streams.

A general-purpose client spends more CPU per request than the server under test does, and
on a small machine the client would then be what is measured. This one sends prepared
requests over keep-alive connections and reads just enough of each answer to time it.

Two ways in: `run_load` (a fixed list of requests, spread over the connections) for the
ingest benchmark, and a command line for a timed closed-loop run that a benchmark starts
in a process of its own, so the client never shares an interpreter with anything else:

    python bench/_loadgen.py SPEC.json      # prints one JSON object: counts and latencies

SPEC.json: {"port", "path", "bodies" (a file, one request body a line), "connections",
"warmup_seconds", "seconds", "content_type"?}. Each connection keeps one request in
flight, cycling through its share of the bodies; latencies are counted after the warm-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec


@dataclass
class LoadResult:
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    failures: int = 0


def post_request(path: str, body: bytes, content_type: str = "application/x-ndjson",
                 host: str = "127.0.0.1") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: its status and body (by Content-Length, or chunked)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()  # the blank line after the last chunk (no trailers)
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()


async def _connection(port: int, requests: list[bytes], result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decode = msgspec.json.Decoder().decode
    try:
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            status, body = await read_response(reader)
            result.latencies.append(time.perf_counter() - start)
            if status == 200:
                result.accepted += decode(body)["accepted"]
            else:
                result.failures += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _run(port: int, requests: list[bytes], connections: int) -> LoadResult:
    result = LoadResult()
    start = time.perf_counter()
    await asyncio.gather(*(_connection(port, requests[i::connections], result)
                           for i in range(connections)))
    result.wall = time.perf_counter() - start
    return result


def run_load(port: int, requests: list[bytes], connections: int) -> LoadResult:
    return asyncio.run(_run(port, requests, connections))


# The timed closed loop (command line) ---------------------------------------------------

@dataclass
class TimedResult:
    latencies: list[float] = field(default_factory=list)
    """Seconds from the request's first byte sent to its answer's last byte read."""
    completed: int = 0
    failures: int = 0
    failure_sample: str = ""
    answer_sample: str = ""
    measured_from: float = 0.0
    measured_to: float = 0.0


async def _timed_connection(port: int, requests: list[bytes], warm_until: float,
                            stop_at: float, result: TimedResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        n = 0
        while True:
            start = clock()
            if start >= stop_at:
                break
            writer.write(requests[n % len(requests)])
            n += 1
            status, body = await read_response(reader)
            if start < warm_until:
                continue
            result.latencies.append(clock() - start)
            result.completed += 1
            if status != 200:
                result.failures += 1
                result.failure_sample = result.failure_sample or \
                    f"HTTP {status}: {body[:300].decode(errors='replace')}"
            elif not result.answer_sample:
                result.answer_sample = body[:600].decode(errors="replace")
    finally:
        writer.close()
        await writer.wait_closed()


async def _timed(spec: dict[str, Any], requests: list[bytes]) -> TimedResult:
    connections = int(spec["connections"])
    result = TimedResult()
    now = time.perf_counter()
    warm_until = now + float(spec["warmup_seconds"])
    stop_at = warm_until + float(spec["seconds"])
    shares = [requests[i::connections] or requests for i in range(connections)]
    await asyncio.gather(*(_timed_connection(int(spec["port"]), share, warm_until, stop_at,
                                             result) for share in shares))
    # Requests in flight at the deadline finish after it: the rate counts the real span.
    result.measured_from, result.measured_to = warm_until, time.perf_counter()
    return result


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    content_type = spec.get("content_type", "application/json")
    bodies = Path(spec["bodies"]).read_bytes().splitlines()
    requests = [post_request(spec["path"], body, content_type) for body in bodies if body]
    try:  # uvloop, when the interpreter has it, halves the client's CPU per request
        import uvloop

        result = uvloop.run(_timed(spec, requests))
    except ImportError:
        result = asyncio.run(_timed(spec, requests))
    wall = result.measured_to - result.measured_from
    answer = json.dumps({
        "completed": result.completed, "failures": result.failures, "wall": wall,
        "rate": result.completed / wall if wall > 0 else 0.0,
        "latencies": result.latencies, "failure_sample": result.failure_sample,
        "answer_sample": result.answer_sample})
    if spec.get("output"):
        # A file, not the pipe: a fast server's latencies run to megabytes, and the event
        # loop may leave standard output non-blocking, which cut large answers short.
        Path(spec["output"]).write_text(answer + "\n")
        return
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.write(answer + "\n")

if __name__ == "__main__":
    main()
