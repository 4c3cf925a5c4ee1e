"""A lean HTTP/1.1 load generator on raw asyncio streams.

A general-purpose client spends more CPU per request than the server under test does, and
on a small machine the client would then be what is measured. This one sends prepared
requests over keep-alive connections and reads just enough of each answer to time it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

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


async def _connection(port: int, requests: list[bytes], result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decode = msgspec.json.Decoder().decode
    try:
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - start)
            if b" 200 " in status_line:
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
