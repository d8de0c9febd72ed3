"""`ecomlab dashboard`: optuna-dashboard over the study storage, answering on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution

from experiments.results.storage import default_storage_url, storage
from tests.loopback import free_port, oversized_request


def test_dashboard_serves_the_study_on_loopback(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    study = optuna.create_study(
        study_name="shop", storage=storage(default_storage_url(runs)), direction="maximize"
    )
    study.add_trial(
        optuna.trial.create_trial(
            params={"optim.lr": 1e-4},
            value=0.81,
            distributions={"optim.lr": FloatDistribution(1e-5, 1e-3, log=True)},
            user_attrs={"experiment_id": "0123456789ab"},
        )
    )
    study.set_user_attr("metrics", [{"name": "val/f1", "goal": "maximize"}])  # what a sweep keeps on it
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ecomlab"),
            "dashboard",
            "shop",
            "--port",
            str(port),
            "--runs-dir",
            str(runs),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, proc.stdout.read1().decode() if proc.stdout else ""
        (summary,) = body["study_summaries"]
        assert summary["study_name"] == "shop"
        printed = proc.stdout.read1().decode() if proc.stdout else ""
        # the printed link is the study's page: optuna-dashboard routes studies by numeric id
        assert f"http://127.0.0.1:{port}/dashboard/studies/{summary['study_id']} " in printed, printed
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/dashboard/studies/{summary['study_id']}", timeout=5
        ) as r:
            assert r.status == 200
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=5
        ) as r:
            detail = json.loads(r.read())
        assert detail["objective_names"] == ["val/f1"]  # every plot says val/f1, not "Objective 0"
        assert detail["trials"][0]["values"] == [0.81]
        assert detail["trials"][0]["params"][0]["name"] == "optim.lr"
        note = f"/api/studies/{summary['study_id']}/note"
        assert " 413 " in oversized_request(port, "PUT", note, 2 << 20, sent=0)  # refused from its header
        with socket.socket() as s:  # bound to loopback only
            s.settimeout(1)
            host_ip = socket.gethostbyname(socket.gethostname())
            if not host_ip.startswith("127."):
                assert s.connect_ex((host_ip, port)) != 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_on_an_unknown_study_is_a_clear_error(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    optuna.create_study(study_name="shop", storage=storage(default_storage_url(runs)))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ecomlab"), "dashboard", "shoe", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "No study named 'shoe'" in proc.stderr and "shop" in proc.stderr


def test_the_study_note_says_the_best_trial_and_how_to_reproduce_and_export_it(tmp_path: Path) -> None:
    from optuna_dashboard import get_note

    from experiments.sweep.summary import note, save_note

    study = optuna.create_study(
        study_name="shop", storage=storage(default_storage_url(tmp_path)), direction="maximize"
    )
    assert "No completed trial yet." in note(study)
    study.set_user_attr("metrics", [{"name": "val/f1", "goal": "maximize"}])
    study.set_user_attr(
        "baseline", {"name": "TF-IDF + logistic regression", "metrics": {"val/f1": 0.8, "test/f1": 0.7}}
    )
    dist = {"optim.lr": FloatDistribution(1e-5, 1e-3, log=True)}
    for i, value in enumerate((0.75, 0.85)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"optim.lr": 1e-4 * (i + 1)},
                value=value,
                distributions=dist,
                user_attrs={"experiment_id": f"{i:012d}", "metrics": {"test/f1": 0.72}},
            )
        )
    save_note(study)
    text = get_note(study)
    assert "**Best: trial 1**, experiment `000000000001`, val/f1 0.8500" in text
    assert "val/f1 0.8500 vs baseline 0.8000" in text and "test/f1 0.7200 vs baseline 0.7000" in text
    assert "`ecomlab reproduce 000000000001`" in text and "`ecomlab export shop`" in text
