"""The peers of bench/serving.py: `mlflow models serve` and MLServer, each in a virtual
environment of its own that the benchmark makes on first use and then reuses.

Both serve the model as a LightGBM text file (the trees Flywheel serves) and get the
feature vector in the request, since neither can look features up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MLFLOW_VERSION = "3.17.2"
MLSERVER_VERSION = "1.7.1"
LIGHTGBM_VERSION = "4.7.0"
PEERS = ("mlflow", "mlserver")
REQUIREMENTS = {
    "mlflow": [f"mlflow=={MLFLOW_VERSION}", f"lightgbm=={LIGHTGBM_VERSION}"],
    # MLServer 1.7's inference workers call asyncio.get_event_loop() outside a loop, which
    # uvloop 0.22 turned into an error: every worker dies at start with a newer uvloop.
    "mlserver": [f"mlserver=={MLSERVER_VERSION}", f"mlserver-lightgbm=={MLSERVER_VERSION}",
                 f"lightgbm=={LIGHTGBM_VERSION}", "uvloop==0.21.0"],
}
MODEL_NAME = "purchase"


def default_venvs() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / \
        "flywheel-bench" / "venvs"


def peer_python(name: str, venvs: Path) -> tuple[Path | None, str]:
    """(the venv's python, what it has) or (None, why not). Builds the venv when it is
    missing or was built for other versions; a marker file names what it holds."""
    venv = venvs / name
    python = venv / "bin" / "python"
    marker = venv / "flywheel-bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS[name]) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python, " ".join(REQUIREMENTS[name])
    print(f"  building the {name} venv in {venv} (once; takes minutes)", file=sys.stderr)
    venvs.mkdir(parents=True, exist_ok=True)
    for step in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS[name]]):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return None, f"could not build its venv: {lines[-1] if lines else done.returncode}"
    marker.write_text(wanted)
    return python, " ".join(REQUIREMENTS[name])


@dataclass(frozen=True)
class Peer:
    name: str
    command: list[str]
    ready_path: str
    predict_path: str
    shape: str
    """Which request bodies it takes (a key of `request_bodies`)."""
    env: dict[str, str]


def mlflow_peer(python: Path, model_txt: Path, folder: Path, port: int, workers: int) -> Peer:
    """`mlflow models serve` of the booster saved by MLflow's own LightGBM flavor."""
    model_dir = folder / "mlflow-model"
    if not model_dir.exists():
        subprocess.run([str(python), "-c", (
            "import sys, lightgbm, mlflow.lightgbm; "
            "mlflow.lightgbm.save_model(lightgbm.Booster(model_file=sys.argv[1]), sys.argv[2])"),
            str(model_txt), str(model_dir)], check=True, capture_output=True)
    mlflow = python.parent / "mlflow"
    return Peer(name=f"mlflow models serve {MLFLOW_VERSION}",
                command=[str(mlflow), "models", "serve", "-m", str(model_dir), "-h",
                         "127.0.0.1", "-p", str(port), "--env-manager", "local",
                         "-w", str(workers)],
                ready_path="/ping", predict_path="/invocations", shape="mlflow",
                env={**activated(python), "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri()})


def mlserver_peer(python: Path, model_txt: Path, folder: Path, port: int,
                  parallel_workers: int) -> Peer:
    """MLServer with its LightGBM runtime, settings as shipped but for the ports."""
    root = folder / "mlserver"
    model = root / MODEL_NAME
    model.mkdir(parents=True, exist_ok=True)
    (model / "model.txt").write_bytes(model_txt.read_bytes())
    (model / "model-settings.json").write_text(json.dumps({
        "name": MODEL_NAME, "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./model.txt", "version": "v1"}}))
    (root / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": _free_port(),
        "metrics_port": _free_port(), "parallel_workers": parallel_workers}))
    mlserver = python.parent / "mlserver"
    return Peer(name=f"MLServer {MLSERVER_VERSION} (lightgbm runtime)",
                command=[str(mlserver), "start", str(root)],
                ready_path=f"/v2/models/{MODEL_NAME}/ready",
                predict_path=f"/v2/models/{MODEL_NAME}/infer", shape="v2",
                env=activated(python))


def activated(python: Path) -> dict[str, str]:
    """The environment of an activated venv: `mlflow models serve` runs `uvicorn` and
    MLServer its workers by name, found on PATH."""
    return {"PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(python.parent.parent)}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
