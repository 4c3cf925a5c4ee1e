"""Ingestion throughput: validated, durably committed events per second.

Side by side in one run:
  * Flywheel SDK (`project.ingest`), with log-assigned ids and with client ids;
  * a naive baseline: `jsonschema` validation per event + one Parquet file per batch;
  * `flywheel ingest` of a Parquet file (6 columns, the time in a `ts` column), as a
    separate process timed end to end, with the process's peak RSS;
  * the HTTP collector (`flywheel serve`) under 100-event requests from a separate load
    process: events/s and ack latency percentiles.

    python bench/ingest.py                      # full size (1M SDK events, 200k over HTTP)
    python bench/ingest.py --events 20000 --http-events 2000   # quick check (CI)
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine, measure, mib, table

SCHEMA_KEY = "iglu:com.acme/add_to_cart/jsonschema/1-0-0"
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "user_id": {"type": "string", "maxLength": 64},
        "sku": {"type": "string", "maxLength": 32},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
        "price": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "page": {"type": ["string", "null"], "maxLength": 2048},
    },
    "required": ["user_id", "sku", "quantity", "price", "currency"],
    "additionalProperties": False,
}


def make_events(count: int, with_ids: bool, seed: int = 0,
                live: bool = False) -> list[dict[str, Any]]:
    """Add-to-cart events. A backfill spreads them over 20 days; `live` traffic, as a
    collector sees it, happened in the last minute."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    events = []
    for i in range(count):
        if live:
            at = (now - datetime.timedelta(seconds=i % 60)).isoformat().replace("+00:00", "Z")
        else:
            at = f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
        event: dict[str, Any] = {
            "schema": SCHEMA_KEY,
            "event_time": at,
            "data": {"user_id": f"user-{(i * 7919 + seed) % 100_000}", "sku": f"sku-{i % 5000}",
                     "quantity": 1 + i % 5, "price": round(0.5 + (i % 977) * 0.37, 2),
                     "currency": ("EUR", "USD", "GBP")[i % 3],
                     "page": None if i % 4 else f"/products/{i % 5000}"},
        }
        if with_ids:
            event["event_id"] = str(uuid.uuid4())
        events.append(event)
    return events


def new_project(root: Path) -> Any:
    from flywheel.project import Project

    project = Project.init(root)
    path = root / "schemas/com.acme/add_to_cart/jsonschema/1-0-0"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SCHEMA))
    project.apply()
    return project


def bench_sdk(workdir: Path, count: int, with_ids: bool) -> dict[str, Any]:
    events = make_events(count, with_ids)
    project = new_project(workdir / f"sdk-{with_ids}")
    project.ingest(events[:100])  # warm: tables and handles open
    events = events[100:]
    with measure() as m:
        result = project.ingest(events)
    project.close()
    assert result.accepted == len(events), result.errors[:3]
    return {"name": "flywheel SDK" + (" (client ids)" if with_ids else ""),
            "events": len(events), "wall": m.wall, "rate": m.rate(len(events)),
            "per_core": m.rate_per_core(len(events)), "peak": m.peak_rss}


def bench_naive(workdir: Path, count: int, batch: int) -> dict[str, Any]:
    """What a team writes by hand: jsonschema per event, a Parquet file per batch."""
    import jsonschema
    import pyarrow as pa
    import pyarrow.parquet as pq

    events = make_events(count, with_ids=False)
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    out = workdir / "naive"
    out.mkdir()
    with measure() as m:
        for n, start in enumerate(range(0, len(events), batch)):
            rows = []
            for event in events[start:start + batch]:
                if validator.is_valid(event["data"]):
                    rows.append({"event_id": str(uuid.uuid4()), "event_time": event["event_time"],
                                 **event["data"]})
            path = out / f"batch-{n:06d}.parquet"
            pq.write_table(pa.Table.from_pylist(rows), path)
            with path.open("rb") as f:  # durable, like the log
                os.fsync(f.fileno())
    return {"name": "naive (jsonschema + Parquet per batch)", "events": len(events),
            "wall": m.wall, "rate": m.rate(len(events)), "per_core": m.rate_per_core(len(events)),
            "peak": m.peak_rss}


# File ingest ------------------------------------------------------------------------------------
def write_parquet(path: Path, count: int) -> None:
    """add_to_cart rows: five properties and the event time in `ts` (six columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    i = pa.array(range(count), pa.int64())
    start = int(datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC).timestamp() * 1e6)
    text = lambda prefix, values: pc.binary_join_element_wise(  # noqa: E731
        prefix, values.cast(pa.string()), "")
    mod = lambda k: pc.subtract(  # noqa: E731
        i, pc.multiply(pc.divide(i, k), k))
    pq.write_table(pa.table({
        "user_id": text("user-", mod(100_000)), "sku": text("sku-", mod(5000)),
        "quantity": pc.add(mod(5), 1),
        "price": pc.add(pc.multiply(mod(977).cast(pa.float64()), 0.37), 0.5),
        "currency": pc.take(pa.array(["EUR", "USD", "GBP"]), mod(3)),
        "ts": pc.add(pc.multiply(mod(20 * 86400), 1_000_000), start).cast(
            pa.timestamp("us", tz="UTC")),
    }), path)


def bench_file(workdir: Path, count: int) -> dict[str, Any]:
    """`flywheel ingest data.parquet --schema ... --time-column ts`, the whole process."""
    from _harness import PeakRss

    root = workdir / "file"
    new_project(root).close()
    source = workdir / "cart.parquet"
    write_parquet(source, count)
    command = [sys.executable, "-m", "flywheel.cli.main", "--project", str(root), "ingest",
               str(source), "--schema", SCHEMA_KEY, "--time-column", "ts"]
    env = {**os.environ, "FLYWHEEL_NO_PROGRESS": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    with PeakRss([process.pid]) as peak:
        out, err = process.communicate()
    wall = time.perf_counter() - started
    assert process.returncode == 0, err.decode()[-2000:]
    accepted = re.search(r"accepted\s+([\d,]+)", out.decode())
    assert accepted and int(accepted.group(1).replace(",", "")) == count, out.decode()
    return {"name": "flywheel ingest FILE.parquet (whole process)", "events": count,
            "wall": wall, "rate": count / wall, "per_core": float("nan"), "peak": peak.peak}


# HTTP ---------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the collector did not start")


def _load(port: int, bodies: list[bytes], connections: int, out: Any) -> None:
    """Runs in its own process: sends every body, records each request's ack latency."""
    from _loadgen import post_request, run_load

    result = run_load(port, [post_request("/v1/events", b) for b in bodies], connections)
    out.put({"wall": result.wall, "latencies": result.latencies, "accepted": result.accepted,
             "failures": result.failures})


def bench_http(workdir: Path, count: int, per_request: int, clients: int) -> dict[str, Any]:
    import psutil

    root = workdir / "http"
    new_project(root).close()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "flywheel.cli.main", "--project", str(root),
                               "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(port)
        events = make_events(count, with_ids=True, seed=1, live=True)
        bodies = [b"\n".join(json.dumps(e).encode() for e in events[i:i + per_request])
                  for i in range(0, len(events), per_request)]
        queue: Any = multiprocessing.get_context("spawn").Queue()
        proc = psutil.Process(server.pid)
        cpu_before = sum(proc.cpu_times()[:2])
        from _harness import PeakRss

        loader = multiprocessing.get_context("spawn").Process(
            target=_load, args=(port, bodies, clients, queue))
        with PeakRss([server.pid]) as peak:
            loader.start()
            stats = queue.get(timeout=1800)
            loader.join()
        server_cpu = sum(proc.cpu_times()[:2]) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(stats["latencies"])
    pct = lambda q: latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000  # noqa: E731
    assert stats["accepted"] == count, stats["accepted"]
    return {"name": f"HTTP collector ({per_request}/request, {clients} clients)",
            "events": count, "wall": stats["wall"], "rate": count / stats["wall"],
            "per_core": count / server_cpu if server_cpu else float("nan"),
            "peak": peak.peak, "p50": pct(0.50), "p99": pct(0.99), "max": latencies[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="SDK events")
    parser.add_argument("--naive-events", type=int, default=200_000,
                        help="events for the (slow) naive baseline")
    parser.add_argument("--http-events", type=int, default=200_000)
    parser.add_argument("--file-rows", type=int, default=None,
                        help="rows of the Parquet file for `flywheel ingest` (default: --events)")
    parser.add_argument("--per-request", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP connections")
    parser.add_argument("--batch", type=int, default=50_000, help="naive baseline batch size")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
    try:
        results = [bench_sdk(workdir, args.events, with_ids=False),
                   bench_sdk(workdir, args.events, with_ids=True),
                   bench_naive(workdir, min(args.naive_events, args.events), args.batch),
                   bench_file(workdir, args.file_rows or args.events)]
        http = bench_http(workdir, args.http_events, args.per_request, args.clients)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    naive = results[2]["rate"]
    rows = [[r["name"], f"{r['events']:,}", f"{r['wall']:.2f}", f"{r['rate']:,.0f}",
             "-" if r["per_core"] != r["per_core"] else f"{r['per_core']:,.0f}",
             f"{r['rate'] / naive:.1f}x", mib(r["peak"])]
            for r in results]
    print(f"\ningestion benchmark — {machine()}\n")
    print(table(rows, ["path", "events", "seconds", "events/s", "events/s/core",
                       "vs naive", "peak RSS"]))
    print(f"\n{http['name']}: {http['rate']:,.0f} events/s over {http['events']:,} events "
          f"({http['per_core']:,.0f} events per server CPU-second); ack latency "
          f"p50 {http['p50']:.1f} ms, p99 {http['p99']:.1f} ms, max {http['max']:.1f} ms; "
          f"server peak RSS {mib(http['peak'])}")


if __name__ == "__main__":
    main()
