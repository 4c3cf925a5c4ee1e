"""Run the app with uvicorn, under the bind policy of DESIGN.md.

On a loopback address (127.0.0.0/8, ::1, localhost) requests need no token. On any other
address the server refuses to start unless the project has at least one token, and then
every request (but `/healthz` and the docs) must carry one with the route's scope.

`python -m flywheel.api.server [--project DIR] [--host H] [--port P]` runs it without
the CLI; `--port 0` picks a free port (the line printed at start names it).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from flywheel._core.errors import FlywheelError

if TYPE_CHECKING:
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


def serve(project: Project, host: str | None = None, port: int | None = None, *,
          log_level: str = "info") -> None:
    """Serve `project` until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    import uvicorn

    from flywheel.api.app import create_app

    host = host or project.config.server.host
    port = project.config.server.port if port is None else port
    require_tokens = needs_tokens(project, host)
    project.ingestor  # noqa: B018 -- open the stores now: a broken backend fails here, in one line
    sock = bind_socket(host, port)
    try:
        app = create_app(project, require_tokens=require_tokens)
        config = uvicorn.Config(app, log_level=log_level, access_log=False,
                                timeout_graceful_shutdown=30)
        bound = sock.getsockname()[1]
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        policy = "tokens required" if require_tokens else "loopback, no tokens needed"
        print(f"flywheel: serving {project.root} on http://{shown}:{bound} ({policy}); "
              f"docs at /docs", file=sys.stderr, flush=True)
        _settle_garbage_collector()
        with _stop_on_signals():
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


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
    args = parser.parse_args(argv)
    from flywheel.project import Project

    try:
        with Project.open(args.project) as project:
            serve(project, args.host, args.port)
    except FlywheelError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
