"""Shared by the sweep benchmarks: a small real-data sweep file written to a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "seed": 0,
    "data": {
        "dataset": "womens_clothing_reviews",
        "target": "recommended",
        "subsample": 2000,
        "max_length": 64,
        "batch_size": 32,
    },
    "model": {"backbone": "tiny", "tiny": {"layers": 2, "hidden": 64, "heads": 2, "vocab_size": 4000}},
    "trainer": {"max_epochs": 4, "patience": 4},
    "tracking": {"mode": "disabled"},
}
PARAMETERS: dict[str, Any] = {
    "optim.lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True},
    "optim.warmup": {"type": "float", "low": 0.0, "high": 0.3},
    "model.hidden_dropout": {"type": "float", "low": 0.0, "high": 0.3},
}


def write(folder: Path, name: str, **spec: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "base": BASE,
        "metric": {"name": "val/f1", "goal": "maximize"},
        "parameters": PARAMETERS,
    }
    doc.update(spec)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_config(folder: Path, name: str, cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`ecomlab run` a config written to `folder/name.yaml` (runs in `folder/runs`, a finished one
    reused); its experiment id and metrics."""
    import json
    import os
    import subprocess
    import sys

    ecomlab = str(Path(sys.executable).parent / "ecomlab")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "ECOMLAB_RUNS": str(folder / "runs")}
    out = subprocess.run(
        [ecomlab, "run", str(path), "--print-config"], env=env, capture_output=True, text=True, check=True
    ).stdout
    exp_id = out.split("experiment id: ")[1].split()[0]
    subprocess.run([ecomlab, "run", str(path), "--no-baseline"], env=env, check=True, capture_output=True)
    return exp_id, json.loads((folder / "runs" / exp_id / "metrics.json").read_text())
