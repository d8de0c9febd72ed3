"""What the serving tests share: one exported tiny model, and a server started on it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import tiny_config
from tests.loopback import free_port


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, asset_cache: Path) -> Path:
    from experiments.config import experiment_id, validate
    from experiments.run.train import train
    from experiments.ship.export import export_run

    root = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECOMLAB_CACHE", str(asset_cache))
        cfg = validate(tiny_config())
        train(cfg, root / "runs")
        export_run(experiment_id(cfg), root / "model", root / "runs")
    return root / "model"


def start_server(folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, subprocess.Popen]:
    """`ecomlab serve FOLDER ARGS` on a free loopback port, once /health answers."""
    import http.client
    import os

    port = free_port()
    cmd = [sys.executable, "-m", "experiments.cli", "serve", str(folder), "--port", str(port), *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    deadline = time.time() + 120
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return port, proc
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the server did not start: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.3)


def request_json(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    """(status, JSON body) of one request to the server on loopback `port`."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def predict(port: int, payload: object) -> tuple[int, dict]:
    """POST `payload` to /predict."""
    return request_json(port, "POST", "/predict", json.dumps(payload).encode())
