"""Run the app with uvicorn, under the bind policy of DESIGN.md.

On a loopback address (127.0.0.0/8, ::1, localhost) requests need no token. On any other
address the server refuses to start unless the project has at least one token, and then
every request (but `/healthz` and the docs) must carry one with the route's scope.

With `workers` above one, the server binds the address once and starts that many worker
processes on the shared listening socket (the kernel spreads connections over them). Each
worker opens the project on its own: its own stores, its own log writer (the log is safe
with any number of writers), its own deployments. SIGTERM or Ctrl-C stops every worker
gracefully: requests in flight are answered and each worker's predictions are committed
to the log before it exits. Metrics are kept in `PROMETHEUS_MULTIPROC_DIR` (a folder of
the project's state dir, made per server), so a scrape of any worker counts all.

`python -m flywheel.api.server [--project DIR] [--host H] [--port P] [--workers N]` runs
it without the CLI; `--port 0` picks a free port (the line printed at start names it).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from flywheel._core.errors import FlywheelError

if TYPE_CHECKING:
    from flywheel.monitoring.schedule import MonitorSchedule
from flywheel.project import Project

__all__ = ["ServeError", "bind_socket", "is_loopback", "main", "needs_tokens", "serve"]


class ServeError(FlywheelError):
    """The server cannot start as asked (an address it may not or cannot bind)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (with or without brackets) and `localhost`."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # another host name: it may resolve to anything
        return False


def needs_tokens(project: Project, host: str) -> bool:
    """Whether requests need tokens on `host`; refuses (ServeError) an open bind."""
    if is_loopback(host):
        return False
    if not project.metadata.list_tokens():
        raise ServeError(
            f"refusing to listen on {host}: it is not a loopback address and the project "
            "has no tokens",
            hint="create one with `flywheel token create NAME --scope ingest`, "
                 "or bind 127.0.0.1")
    return True


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket; a bind failure is one clear line, not a traceback."""
    name = host.strip().strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((name, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         hint="choose another --port or --host") from None
    return sock


def _settle_garbage_collector() -> None:
    """Move start-up objects out of the collector's reach and collect young objects less
    often: full collections over a large heap are the longest pauses a request sees."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


_log = logging.getLogger("flywheel.server")
_GRACE_SECONDS = 30
"""How long a stopping worker waits for requests in flight."""


def serve(project: Project, host: str | None = None, port: int | None = None, *,
          workers: int = 1, log_level: str = "info") -> None:
    """Serve `project` until interrupted (SIGINT/SIGTERM stop it gracefully), in this
    process or in `workers` processes sharing the listening socket."""
    if workers < 1:
        raise ServeError(f"--workers must be at least 1, not {workers}")
    host = host or project.config.server.host
    port = project.config.server.port if port is None else port
    require_tokens = needs_tokens(project, host)
    project.ingestor  # noqa: B018 -- open the stores now: a broken backend fails here, in one line
    sock = bind_socket(host, port)
    try:
        bound = sock.getsockname()[1]
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        policy = "tokens required" if require_tokens else "loopback, no tokens needed"
        processes = f", {workers} worker processes" if workers > 1 else ""
        print(f"flywheel: serving {project.root} on http://{shown}:{bound} ({policy}"
              f"{processes}); docs at /docs", file=sys.stderr, flush=True)
        schedule = _monitor_schedule(project)
        schedule.start()
        try:
            if workers == 1:
                _serve_here(project, sock, require_tokens, log_level)
            else:
                _serve_workers(project, sock, _Worker(str(project.root), require_tokens,
                                                      log_level), workers)
        finally:
            schedule.stop()
    finally:
        sock.close()


def _monitor_schedule(project: Project) -> MonitorSchedule:
    """The monitors with a `schedule:` and the scheduled retraining policies, run beside
    the server in this process only (workers do not run them again)."""
    from flywheel.monitoring.retraining import alert_sink
    from flywheel.monitoring.schedule import MonitorSchedule

    monitors = project.monitors
    schedules = {name: spec.schedule for name, spec in monitors.monitors.items()
                 if spec.schedule is not None}
    policies = any(p.schedule is not None for p in monitors.retraining.values())
    sink = alert_sink(project, actions=monitors.actions, retraining=monitors.retraining)
    return MonitorSchedule(schedules=schedules,
                           run=lambda names: project.run_monitors(names),
                           run_policies=sink.run_schedules if policies else None)


def _serve_here(project: Project, sock: socket.socket, require_tokens: bool,
                log_level: str) -> None:
    import uvicorn

    from flywheel.api.app import create_app

    if project.config.server.prediction_log == "process":
        project.log_predictions_in_a_process()
    app = create_app(project, require_tokens=require_tokens)
    config = uvicorn.Config(app, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=_GRACE_SECONDS)
    _settle_garbage_collector()
    with _stop_on_signals():
        uvicorn.Server(config).run(sockets=[sock])


@dataclass(frozen=True, slots=True)
class _Worker:
    """What a worker process needs to serve (sent to it pickled)."""

    root: str
    require_tokens: bool
    log_level: str

    def __call__(self, sock: socket.socket) -> None:
        from flywheel.project import Project

        with Project.open(self.root) as project:  # closing commits its predictions
            _serve_here(project, sock, self.require_tokens, self.log_level)


def _run_worker(worker: _Worker, sock: socket.socket) -> None:
    worker(sock)


def _serve_workers(project: Project, sock: socket.socket, worker: _Worker,
                   count: int) -> None:
    """Start `count` worker processes on `sock`, restart one that dies, and on SIGTERM or
    Ctrl-C stop them all gracefully."""
    from flywheel.api.metrics import MULTIPROCESS_ENV

    metrics_dir = project.state_dir / "metrics" / f"server-{os.getpid()}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    previous_env = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = str(metrics_dir)  # inherited by the workers
    stop = threading.Event()
    handlers = _on_stop_signals(stop)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited state
    processes: list[Any] = []
    try:
        for index in range(count):
            processes.append(_start(context, worker, sock, index))
        while not stop.wait(0.2):
            for index, process in enumerate(processes):
                if not process.is_alive() and not stop.is_set():
                    _log.error("worker %d (pid %s) exited with %s; starting another", index,
                               process.pid, process.exitcode)
                    time.sleep(0.5)  # no busy loop if workers cannot start
                    processes[index] = _start(context, worker, sock, index)
    finally:
        _stop_all(processes)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if previous_env is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous_env
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _start(context: Any, worker: _Worker, sock: socket.socket, index: int) -> Any:
    process = context.Process(target=_run_worker, args=(worker, sock),
                              name=f"flywheel-worker-{index}")
    process.start()
    return process


def _stop_all(processes: Sequence[Any]) -> None:
    """SIGTERM to every worker (each answers what is in flight and commits its log), then
    wait; a worker still running long after its grace period is killed."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_SECONDS + 30
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0.1))
        if process.is_alive():
            _log.error("worker pid %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()


def _on_stop_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT set `stop`; returns the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM,
                                                                   signal.SIGINT)}


class _Stopped(BaseException):
    """SIGTERM, re-raised by uvicorn after its graceful shutdown."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Make Ctrl-C and SIGTERM a normal, clean end (exit 0, stores closed) instead of an
    interrupted command: uvicorn shuts down gracefully, then re-raises the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m flywheel.api.server`: serve a project without the CLI."""
    parser = argparse.ArgumentParser(prog="python -m flywheel.api.server",
                                     description="Serve a Flywheel project over HTTP.")
    parser.add_argument("--project", default=None, help="project folder (default: cwd)")
    parser.add_argument("--host", default=None, help="address (default: server.host)")
    parser.add_argument("--port", type=int, default=None, help="port (default: server.port)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    args = parser.parse_args(argv)
    from flywheel.project import Project

    try:
        with Project.open(args.project) as project:
            serve(project, args.host, args.port, workers=args.workers)
    except FlywheelError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
