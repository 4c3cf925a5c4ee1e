"""Model serving: predict with enrichment, side by side with `mlflow models serve` and MLServer.

    python bench/serving.py                  # full size: 100k users, 10 s per run, both peers
    python bench/serving.py --quick --peers none          # tiny run (CI): Flywheel only

A LightGBM classifier over 20 online features (two feature views of 10), one entity per
request. The servers run one at a time, each in its own process, with a load generator
(bench/_loadgen.py: asyncio streams on raw keep-alive HTTP/1.1 connections) in another
process, at 1 and 32 concurrent connections, each connection keeping one request in
flight. Flywheel is sent entity ids and looks the features up in the online store (the
prediction is logged); the peers cannot enrich, so they are sent the feature vector:
MLflow as a `dataframe_split`, MLServer as an Open Inference Protocol tensor. Flywheel
is also sent the feature rows (`instances`), which is scoring without the lookup.

Scoring alone is also timed in process (no HTTP): LightGBM's own predict on one row, the
deployment's predict on a feature row, and on an entity id (lookup + logging), so the
cost of enrichment and logging can be read off directly.

Each peer runs in a virtual environment of its own, made on first use under
~/.cache/flywheel-bench/venvs (or --venvs DIR) and reused after. Peak memory is the
largest resident set of the server's process tree while it served.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _serving_peers as peers
import _serving_setup as setup
from _harness import PeakRss, machine, mib, table

LOADGEN = Path(__file__).resolve().parent / "_loadgen.py"
OURS = "flywheel serve"
FLOOR = "uvicorn, no work"
"""The HTTP stack alone (bench/_http_floor.py): what the box allows before any work."""


@dataclass
class Run:
    server: str
    request: str
    connections: int
    completed: int = 0
    failures: int = 0
    rate: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    peak_rss: int = 0
    failure_sample: str = ""

    def pct(self, q: float) -> float:
        ordered = self.latencies
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000 if ordered \
            else float("nan")


@dataclass
class Served:
    """One server's runs, or why it was not measured."""

    name: str
    runs: list[Run] = field(default_factory=list)
    peak_rss: int = 0
    not_run: str = ""


# Servers ---------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    import psutil

    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


def tree_cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], log: Path,
               timeout: float = 180) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"exited ({proc.returncode}) before it was ready: "
                               + " / ".join(tail))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"not ready on port {port} within {timeout:.0f} s")


def post_once(port: int, path: str, body: bytes) -> tuple[int, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")


def probability(shape: str, answer: Any) -> float:
    """The positive class's probability in each server's answer."""
    if shape in ("entities", "instances"):
        return float(answer["predictions"][0]["outputs"]["probability"])
    if shape == "mlflow":
        return float(answer["predictions"][0])
    outputs = answer["outputs"]  # Open Inference Protocol v2: MLServer's one, or ours by name
    named = [o for o in outputs if o["name"] == "probability"]
    return float((named or outputs)[0]["data"][0])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load(port: int, path: str, bodies: Path, connections: int, args: argparse.Namespace,
         folder: Path) -> dict[str, Any]:
    """The load generator, in a process of its own."""
    spec = folder / f"load-{port}-{connections}.json"
    output = spec.with_suffix(".out.json")
    spec.write_text(json.dumps({"port": port, "path": path, "bodies": str(bodies),
                                "connections": connections, "seconds": args.seconds,
                                "warmup_seconds": args.warmup, "output": str(output)}))
    done = subprocess.run([sys.executable, str(LOADGEN), str(spec)], capture_output=True,
                          text=True, timeout=args.seconds + args.warmup + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def serve_and_load(name: str, command: list[str], env: dict[str, str], ready: str,
                   cases: list[tuple[str, str, Path, str]], check: tuple[int, float],
                   bodies_first: dict[str, bytes], args: argparse.Namespace,
                   folder: Path, port: int) -> Served:
    """Start one server, check its answer for a known entity, then load it with each case
    (request label, path, bodies, shape) at each connection count."""
    served = Served(name)
    log = folder / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, start_new_session=True)
    try:
        wait_ready(port, ready, proc, log)
        pids = process_tree(proc.pid)
        with PeakRss(pids) as whole:
            for label, path, bodies, shape in cases:
                status, answer = post_once(port, path, bodies_first[shape])
                if status != 200:
                    served.not_run = f"{path}: HTTP {status}: {str(answer)[:200]}"
                    return served
                got = probability(shape, answer)
                if abs(got - check[1]) > 1e-6:
                    raise RuntimeError(f"{name} ({label}) answers p={got} for user {check[0]}, "
                                       f"the model says {check[1]}")
                for connections in args.connections:
                    print(f"  {name}, {label}, {connections} connection(s)", file=sys.stderr)
                    cpu_before = tree_cpu(pids)
                    with PeakRss(pids) as peak:
                        result = load(port, path, bodies, connections, args, folder)
                    result["latencies"].sort()
                    served.runs.append(Run(
                        server=name, request=label, connections=connections,
                        completed=result["completed"], failures=result["failures"],
                        rate=result["rate"], latencies=result["latencies"],
                        server_cpu=tree_cpu(pids) - cpu_before, peak_rss=peak.peak,
                        failure_sample=result["failure_sample"]))
        served.peak_rss = whole.peak
    except RuntimeError as exc:
        served.not_run = str(exc)
    finally:
        stop(proc)
    return served


# In-process scoring ----------------------------------------------------------------------

def time_calls(call: Any, count: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return sorted(times)


def in_process(root: Path, model: Any, matrix: Any, entities: list[int],
               count: int) -> tuple[dict[str, list[float]], str]:
    """Scoring alone, in this process: p50-ready latency lists per way of scoring, and
    why the deployment part did not run (empty when it did)."""
    import numpy as np

    names = setup.feature_names()
    booster = model.booster_
    rows = [matrix[e:e + 1] for e in entities[:count]]
    cycle = iter(range(10**9))
    out: dict[str, list[float]] = {}
    out["LightGBM Booster.predict, 1 row (numpy)"] = time_calls(
        lambda: booster.predict(rows[next(cycle) % len(rows)]), count)
    try:
        from flywheel.project import Project

        project = Project.open(root)
        deployments = project.deployments
    except (ImportError, AttributeError) as exc:
        return out, f"no deployments in this build ({exc})"
    try:
        deployment = deployments.get(setup.DEPLOYMENT)
        instance_rows = [{n: (int(v) if j % 2 == 0 else float(v))
                          for j, (n, v) in enumerate(zip(names, np.asarray(r[0]), strict=True))}
                         for r in rows]
        out["deployment.predict(instances=1 row)"] = time_calls(
            lambda: deployment.predict(instances=[instance_rows[next(cycle) % len(rows)]]),
            count)
        ids = entities[:count]
        out["deployment.predict(entities=1 id)"] = time_calls(
            lambda: deployment.predict(entities={setup.ENTITY: [ids[next(cycle) % len(ids)]]}),
            count)
    finally:
        deployments.close()
        project.close()
    return out, ""


# The run ---------------------------------------------------------------------------------

def our_server(root: Path, bodies: dict[str, Path], first: dict[str, bytes],
               check: tuple[int, float], args: argparse.Namespace, folder: Path) -> Served:
    port = free_port()
    command = [sys.executable, "-m", "flywheel.cli.main", "--project", str(root), "serve",
               "--host", "127.0.0.1", "--port", str(port)]
    if args.workers != 1:
        command += ["--workers", str(args.workers)]
    predict = f"/v1/models/{setup.DEPLOYMENT}/predict"
    cases = [("entities (lookup + log)", predict, bodies["entities"], "entities"),
             ("instances (feature row)", predict, bodies["instances"], "instances"),
             ("OIP v2 tensor (as MLServer)", f"/v2/models/{setup.DEPLOYMENT}/infer",
              bodies["v2"], "v2")]
    # Ready once the deployment has loaded its model, as a load balancer would ask.
    served = serve_and_load(OURS, command, {"FLYWHEEL_NO_PROGRESS": "1"},
                            f"/v2/models/{setup.DEPLOYMENT}/ready", cases, check, first, args,
                            folder, port)
    if served.not_run.startswith(f"{predict}: HTTP 404"):
        served.not_run = "not yet measured: no predict route in this build"
    return served


def floor_server(bodies: dict[str, Path], first: dict[str, bytes], check: tuple[int, float],
                 args: argparse.Namespace, folder: Path) -> Served:
    """The same uvicorn answering a fixed prediction without doing anything."""
    port = free_port()
    answer = {"deployment": setup.DEPLOYMENT, "predictions": [{
        "prediction_id": "0" * 26, "member": setup.DEPLOYMENT, "model": setup.DEPLOYMENT,
        "version": 1, "outputs": {"probability": check[1], "label": int(check[1] > 0.5)},
        "missing": []}]}
    command = [sys.executable, "-m", "uvicorn", "_http_floor:app", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning"]
    env = {"FLOOR_ANSWER": json.dumps(answer),
           "PYTHONPATH": str(Path(__file__).resolve().parent)}
    return serve_and_load(FLOOR, command, env, "/", [
        ("fixed answer", f"/v1/models/{setup.DEPLOYMENT}/predict", bodies["entities"],
         "entities")], check, first, args, folder, port)


def peer_servers(model_txt: Path, bodies: dict[str, Path], first: dict[str, bytes],
                 check: tuple[int, float], args: argparse.Namespace,
                 folder: Path) -> list[Served]:
    results = []
    for name in args.peers:
        python, what = peers.peer_python(name, args.venvs)
        if python is None:
            results.append(Served(name, not_run=what))
            continue
        port = free_port()
        if name == "mlflow":
            peer = peers.mlflow_peer(python, model_txt, folder, port, args.workers)
        else:
            peer = peers.mlserver_peer(python, model_txt, folder, port,
                                       args.mlserver_parallel_workers)
        results.append(serve_and_load(
            peer.name, peer.command, peer.env, peer.ready_path,
            [("feature vector", peer.predict_path, bodies[peer.shape], peer.shape)],
            check, first, args, folder, port))
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000, help="entities online")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connections", default="1,32",
                        help="concurrent connections, comma-separated")
    parser.add_argument("--requests", type=int, default=20_000,
                        help="distinct requests prepared (entities drawn at random)")
    parser.add_argument("--peers", default="mlflow,mlserver",
                        help="'mlflow,mlserver', one of them, or 'none'")
    parser.add_argument("--venvs", type=Path, default=peers.default_venvs(),
                        help="where the peers' virtual environments are kept")
    parser.add_argument("--workers", type=int, default=1,
                        help="HTTP worker processes of flywheel serve and mlflow models serve")
    parser.add_argument("--mlserver-parallel-workers", type=int, default=1,
                        help="MLServer's inference worker processes (its default: 1)")
    parser.add_argument("--online", default=None,
                        help="the online store's URL (default: the project's SQLite)")
    parser.add_argument("--in-process-calls", type=int, default=5000)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: 2,000 users, 1 s runs (proof that it works)")
    args = parser.parse_args()
    if args.quick:
        args.users, args.train_rows, args.trees = 2000, 2000, 20
        args.seconds, args.warmup, args.requests, args.in_process_calls = 1.0, 0.3, 500, 300
    args.connections = [int(c) for c in str(args.connections).split(",")]
    args.peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",")]
    unknown = [p for p in args.peers if p not in peers.PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}: choose from {peers.PEERS}")
    return args


def main() -> None:
    import numpy as np

    args = parse_args()
    args.load_before = os.getloadavg()  # the box is shared: say how busy it was
    folder = Path(tempfile.mkdtemp(prefix="flywheel-bench-serving-"))
    try:
        print("  data, model and project", file=sys.stderr)
        frames = setup.make_frames(args.users)
        matrix = setup.feature_matrix(frames)
        model = setup.train(matrix, min(args.train_rows, args.users), args.trees)
        model_txt = folder / "model.txt"
        model.booster_.save_model(str(model_txt))
        root = folder / "project"
        online_rows = setup.make_project(root, frames, model, args.online)
        entities = np.random.default_rng(5).integers(0, args.users, args.requests).tolist()
        bodies = setup.request_bodies(folder, matrix, entities)
        first = {shape: path.read_bytes().split(b"\n", 1)[0] for shape, path in bodies.items()}
        check = (entities[0], float(model.booster_.predict(matrix[entities[0]:entities[0] + 1])[0]))
        print("  scoring in process", file=sys.stderr)
        scoring, scoring_missing = in_process(root, model, matrix, entities,
                                              args.in_process_calls)
        results = [our_server(root, bodies, first, check, args, folder),
                   floor_server(bodies, first, check, args, folder),
                   *peer_servers(model_txt, bodies, first, check, args, folder)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(args, online_rows, scoring, scoring_missing, results)


def report(args: argparse.Namespace, online_rows: int, scoring: dict[str, list[float]],
           scoring_missing: str, results: list[Served]) -> None:
    print(f"\nserving benchmark — {machine()}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in args.load_before)}, after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"model: LightGBM, {args.trees} trees of up to 31 leaves over 20 features "
          f"(2 feature views), {args.users:,} users ({online_rows:,} rows online, "
          f"{args.online or 'sqlite'}); {args.seconds:g} s per run after {args.warmup:g} s "
          f"of warm-up; workers: {args.workers}\n")
    print("scoring alone, in process (one row per call):")
    print(table([[name, f"{len(t):,}", f"{t[len(t) // 2] * 1e6:,.0f}",
                  f"{t[min(int(0.99 * len(t)), len(t) - 1)] * 1e6:,.0f}"]
                 for name, t in scoring.items()],
                ["call", "calls", "p50 µs", "p99 µs"]))
    if scoring_missing:
        print(f"  deployment.predict: not yet measured — {scoring_missing}")
    rows = []
    for served in results:
        if served.not_run:
            rows.append([served.name, "NOT RUN", "", "", "", "", "", "", served.not_run[:70]])
            continue
        for run in served.runs:
            rows.append([served.name, run.request, str(run.connections), f"{run.rate:,.0f}",
                         f"{run.pct(0.5):.2f}", f"{run.pct(0.99):.2f}",
                         f"{run.server_cpu * 1000 / max(run.completed, 1):.2f}",
                         f"{run.failures:,}", mib(run.peak_rss)])
    print("\nover HTTP (latency as the client sees it, request sent to answer read):")
    print(table(rows, ["server", "request", "conns", "req/s", "p50 ms", "p99 ms",
                       "server CPU ms/req", "failed", "peak RSS"]))
    for served in results:
        for run in served.runs:
            if run.failure_sample:
                print(f"  {served.name}, {run.request}: first failure: {run.failure_sample}")
    verdicts(args, scoring, results)


def verdicts(args: argparse.Namespace, scoring: dict[str, list[float]],
             results: list[Served]) -> None:
    ours = next((s for s in results if s.name == OURS and not s.not_run), None)
    if ours is None:
        print(f"\n{OURS}: "
              f"{next(s.not_run for s in results if s.name == OURS)}")
        return
    most = max(args.connections)
    enriched = {r.connections: r for r in ours.runs if r.request.startswith("entities")}
    plain = {r.connections: r for r in ours.runs if r.request.startswith("instances")}
    print(f"\nratios ({OURS}, entities, over each peer at the same connections; "
          "req/s: higher is better, p99: lower is better):")
    for served in results:
        if served is ours or served.not_run or served.name == FLOOR:
            continue
        for run in served.runs:
            mine = enriched[run.connections]
            print(f"  vs {served.name} at {run.connections}: {mine.rate / run.rate:.2f}x req/s, "
                  f"p99 {mine.pct(0.99):.2f} vs {run.pct(0.99):.2f} ms, "
                  f"peak RSS {mib(ours.peak_rss)} vs {mib(served.peak_rss)}")
    oip = {r.connections: r for r in ours.runs if r.request.startswith("OIP")}
    for served in results:
        if served.name.startswith("MLServer") and not served.not_run and oip:
            for run in served.runs:
                print(f"  the same OIP v2 request, {OURS} vs {served.name} at "
                      f"{run.connections}: {oip[run.connections].rate / run.rate:.2f}x req/s")
    http_cost = enriched[min(args.connections)].pct(0.5) - plain[min(args.connections)].pct(0.5)
    print(f"\nenrichment over HTTP at {min(args.connections)} connection: p50 entities - p50 "
          f"instances = {http_cost:.3f} ms")
    by_id = scoring.get("deployment.predict(entities=1 id)")
    alone = scoring["LightGBM Booster.predict, 1 row (numpy)"]
    added = None
    if by_id:
        added = (by_id[len(by_id) // 2] - alone[len(alone) // 2]) * 1000
        print(f"enrichment + logging in process: p50 deployment.predict(entities) - p50 "
              f"Booster.predict = {added:.3f} ms")
    print("\ntargets:")
    peers_at_most = [r for s in results if s is not ours and not s.not_run
                     and s.name != FLOOR for r in s.runs if r.connections == most]
    floor = {r.connections: r for s in results if s.name == FLOOR for r in s.runs}
    if peers_at_most:
        worst = min(enriched[most].rate / r.rate for r in peers_at_most)
        print(f"  >= 2x the throughput of every peer at {most} connections: "
              f"{'MET' if worst >= 2 else 'NOT MET'} (lowest ratio {worst:.2f}x)")
    print(f"  p99 <= 10 ms at {most} connections: "
          f"{'MET' if enriched[most].pct(0.99) <= 10 else 'NOT MET'} "
          f"({enriched[most].pct(0.99):.2f} ms; with {most} requests always in flight the "
          f"mean latency is {most} / req/s (Little's law), so a mean under 10 ms needs "
          f"{most * 100:,} req/s)")
    if most in floor:
        bare, busy = floor[most], enriched[most]
        print(f"    the floor on this box: {FLOOR} answers {bare.rate:,.0f} req/s at {most} "
              f"connections, p50 {bare.pct(0.5):.2f} ms, p99 {bare.pct(0.99):.2f} ms; "
              f"{OURS} spends {busy.server_cpu * 1000 / max(busy.completed, 1):.2f} "
              f"ms of CPU per prediction against its "
              f"{bare.server_cpu * 1000 / max(bare.completed, 1):.2f}")
    if added is not None:
        print(f"  enrichment + logging <= 1 ms at p50: {'MET' if added <= 1 else 'NOT MET'} "
              f"({added:.3f} ms in process, {http_cost:.3f} ms over HTTP)")


if __name__ == "__main__":
    main()
