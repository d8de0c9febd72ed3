"""`train(cfg)` through the CLI: run records, reproduce, W&B offline files, secrets, LoRA, pruning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from experiments.cli import app
from experiments.config import experiment_id, validate
from experiments.run.timing import is_timing
from experiments.run.train import train
from tests.conftest import tiny_config
from tests.wandb_records import summary

runner = CliRunner()


def write_config(tmp_path: Path, **groups) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny_config(**groups)))
    return path


def ecomlab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).parent / "ecomlab"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_run_through_the_cli_writes_a_complete_record(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    exp_id = experiment_id(validate(tiny_config()))
    result = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert f"Results of {exp_id}" in result.output and "test/f1" in result.output
    rec = tmp_path / "runs" / exp_id
    for name in (
        "config.yaml",
        "manifest.json",
        "metrics.json",
        "metrics.csv",
        "model.safetensors",
        "confusion_matrix.png",
        "per_class.json",
    ):
        assert (rec / name).is_file(), name
    assert not (rec / "checkpoints").exists()
    # the recorded config is complete and runs as is, to the same id
    assert experiment_id(validate(yaml.safe_load((rec / "config.yaml").read_text()))) == exp_id
    metrics = json.loads((rec / "metrics.json").read_text())
    for key in (
        "test/acc",
        "test/acc_top3",
        "test/f1",
        "test/precision",
        "test/recall",
        "test/loss",
        "val/f1",
        "val/threshold",
        "test/f1_at_threshold",
        "model/trainable_params",
        "model/sparsity",
        "best_epoch",
    ):
        assert key in metrics, key
    # two classes: the threshold is chosen on val and then applied to test (the per-class report is of
    # the thresholded predictions, so its accuracy is the at-threshold one)
    assert 0.0 < metrics["val/threshold"] < 1.0
    per_class = json.loads((rec / "per_class.json").read_text())
    assert per_class["accuracy"] == pytest.approx(metrics["test/acc_at_threshold"])
    manifest = json.loads((rec / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["experiment_id"] == exp_id
    assert manifest["data"]["fingerprint"] and manifest["tokenizer"]["fingerprint"]
    assert manifest["seeds"] == {"seed": 7, "split_seed": 0}
    assert manifest["environment"]["packages"]["torch"].startswith("2.")
    assert "commit" in manifest["code"] and manifest["command"]
    assert manifest["weights_sha256"] and len(manifest["weights_sha256"]) == 64
    header = (rec / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss_step" in header and "val/f1" in header

    listing = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "runs")])
    assert exp_id in listing.output and "text_file" in listing.output
    again = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert "already completed" in again.output


def test_reproduce_gives_identical_metrics_and_weights(tmp_path: Path) -> None:
    cfg = validate(tiny_config(optim={"lr": 1e-3}, model={"hidden_dropout": 0.2}))
    first = train(cfg)
    result = runner.invoke(app, ["reproduce", experiment_id(cfg)])
    assert result.exit_code == 0, result.output
    assert "Identical" in result.output
    reproductions = list((tmp_path / "runs" / experiment_id(cfg) / "reproductions").iterdir())
    again = json.loads((reproductions[0] / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if not is_timing(k)} == {
        k: v for k, v in first.items() if not is_timing(k)
    }


def test_reproduce_reports_a_difference(tmp_path: Path) -> None:
    cfg = validate(tiny_config())
    train(cfg)
    manifest_path = tmp_path / "runs" / experiment_id(cfg) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["weights_sha256"] = "0" * 64
    manifest["data"]["fingerprint"] = "changed"
    manifest_path.write_text(json.dumps(manifest))
    result = runner.invoke(app, ["reproduce", experiment_id(cfg)])
    assert result.exit_code == 1
    assert "Not identical" in result.output and "data fingerprint" in result.output


def test_a_run_from_another_cpu_reproduces_as_equivalent_within_tolerance(tmp_path: Path) -> None:
    """Float kernels differ between CPU instruction sets, so a record from another kind of CPU cannot
    be bit-identical; `reproduce` accepts it (exit 0) only when every metric agrees within 1e-4."""
    cfg = validate(tiny_config())
    train(cfg)
    record = tmp_path / "runs" / experiment_id(cfg)
    manifest = json.loads((record / "manifest.json").read_text())
    assert manifest["environment"]["cpu"]["isa"]  # the record says which CPU wrote it
    manifest["environment"]["cpu"] = {"model": "Other CPU", "isa": "OTHER", "flags_sha256": "0" * 12}
    manifest["weights_sha256"] = "0" * 64
    (record / "manifest.json").write_text(json.dumps(manifest))
    metrics = json.loads((record / "metrics.json").read_text())
    (record / "metrics.json").write_text(
        json.dumps({**metrics, "val/loss": metrics["val/loss"] * (1 + 1e-6)})
    )
    result = runner.invoke(app, ["reproduce", experiment_id(cfg)])
    assert result.exit_code == 0, result.output
    assert "Equivalent" in result.output and "cpu isa" in result.output


@pytest.mark.parametrize(
    ("metric", "hardware", "equivalent"),
    [(0.5 * (1 + 1e-6), True, True), (0.5 * (1 + 1e-3), True, False), (0.5 * (1 + 1e-6), False, False)],
    ids=["close-on-other-cpu", "too-far-on-other-cpu", "close-on-the-same-cpu"],
)
def test_equivalent_needs_other_hardware_and_metrics_within_tolerance(
    metric: float, hardware: bool, equivalent: bool
) -> None:
    from experiments.run.reproduce import Reproduction

    changes = [("cpu isa", "AVX2", "AVX512")] if hardware else [("code commit", "a", "b")]
    r = Reproduction(
        exp_id="0" * 12,
        path=Path("."),
        metrics=[("val/loss", 0.5, metric), ("val/f1", 1.0, 1.0)],
        weights=("a" * 64, "b" * 64),
        setup_changes=changes,
    )
    assert not r.identical and r.equivalent is equivalent


@pytest.mark.parametrize("bad", ["../etc", "abc/def", "ABCDEF012345", "123"])
def test_invalid_ids_are_refused(bad: str) -> None:
    proc = ecomlab("reproduce", bad)
    assert proc.returncode == 2
    assert "is not a valid experiment id" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_id_is_a_clear_error() -> None:
    proc = ecomlab("reproduce", "0123456789ab")
    assert proc.returncode == 2 and "No run record 0123456789ab" in proc.stderr


def test_bad_config_lists_every_problem_without_a_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, optim={"lr": 0}, peft={"r": -1})
    proc = ecomlab("run", str(path), "--set", "trainer.max_epoch=3")
    assert proc.returncode == 2
    for needle in ("3 config problem(s)", "optim.lr:", "peft.r:", "trainer.max_epoch: unknown key"):
        assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wandb_offline_run_holds_config_metrics_and_summary(tmp_path: Path) -> None:
    cfg = validate(tiny_config(tracking={"mode": "offline", "tags": ["smoke"]}))
    metrics = train(cfg)
    rec = tmp_path / "runs" / experiment_id(cfg)
    (run_file,) = rec.glob("wandb/offline-run-*/run-*.wandb")
    info = summary(run_file)
    assert info["name"] == experiment_id(cfg)
    assert set(info["tags"]) == {"smoke", "text_file", "text_classification"}
    assert info["config"]["optim"]["lr"] == cfg.optim.lr
    for key in ("train/loss_step", "val/f1", "val/acc", "val/loss", "test/acc"):
        assert key in info["history"], key
    assert info["summary"]["test/acc"] == pytest.approx(metrics["test/acc"])
    assert info["summary"]["model/trainable_params"] == metrics["model/trainable_params"]
    manifest = json.loads((rec / "manifest.json").read_text())
    assert manifest["tracking"]["mode"] == "offline" and manifest["tracking"]["run_id"] in run_file.name
    dry = runner.invoke(app, ["sync", "--dry-run"])
    assert "would upload" in dry.output and run_file.parent.name in dry.output.replace("\n", "")


def test_runs_say_where_their_time_went_and_each_lists_the_packages_listed_once(tmp_path: Path) -> None:
    requirements = []
    for seed in (1, 2):  # two runs in one process, as a sweep worker's trials are
        cfg = validate(tiny_config(seed=seed, tracking={"mode": "offline"}))
        metrics = train(cfg)
        phases = (
            "data_prep",
            "model_build",
            "wandb_init",
            "fit",
            "evaluate",
            "analysis",
            "latency",
            "weights",
        )
        seconds = {p: metrics[f"time/{p}_s"] for p in phases}
        assert all(v >= 0 for v in seconds.values()) and seconds["fit"] > 0
        assert sum(seconds.values()) <= metrics["time/total_s"]  # phases do not overlap
        rec = tmp_path / "runs" / experiment_id(cfg)
        on_disk = json.loads((rec / "metrics.json").read_text())
        assert on_disk["time/record_s"] > 0  # the W&B finish and the last files, after the summary was sent
        (run_file,) = rec.glob("wandb/offline-run-*/run-*.wandb")
        summary(run_file)  # waits until W&B has written the run
        requirements.append((run_file.parent / "files" / "requirements.txt").read_text())
    assert requirements[0] == requirements[1] and "torch==" in requirements[1]


def test_api_key_never_reaches_a_written_file(
    tmp_path: Path, asset_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "ecomlabcanary" + "7" * 27
    monkeypatch.setenv("WANDB_API_KEY", canary)
    cfg = validate(tiny_config(tracking={"mode": "offline"}))
    train(cfg)
    assert os.environ["WANDB_API_KEY"] == canary  # restored for the user's process
    leaks = [
        p
        for root in (tmp_path, asset_cache)
        for p in root.rglob("*")
        if p.is_file() and canary.encode() in p.read_bytes()
    ]
    assert leaks == []
    written = sum(1 for p in (tmp_path / "runs").rglob("*") if p.is_file())
    assert written > 10  # the check looked at a real record


def test_auto_mode_goes_offline_without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from experiments.config import TrackingConfig
    from experiments.results.tracking import resolve_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert resolve_mode(TrackingConfig()) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode(TrackingConfig()) == "online"
    assert resolve_mode(TrackingConfig(mode="disabled")) == "disabled"


def test_pruning_ratio_half_leaves_half_zeros(tmp_path: Path) -> None:
    cfg = validate(
        tiny_config(
            prune={"ratio": 0.5, "epochs": 2},
            trainer={"max_epochs": 2, "patience": 5, "monitor": "val/loss", "mode": "min"},
        )
    )
    metrics = train(cfg)
    weights = load_file(tmp_path / "runs" / experiment_id(cfg) / "model.safetensors")
    targeted = [
        w for k, w in weights.items() if ".encoder.layer." in k and k.endswith(".weight") and w.dim() == 2
    ]
    assert len(targeted) == 2 * 6  # q, k, v, attention out, intermediate, output per layer
    zeros = sum(int((w == 0).sum()) for w in targeted)
    total = sum(w.numel() for w in targeted)
    best = metrics["best_epoch"]
    expected = 0.25 * (best + 1)  # linear ramp over two epochs, pruning at epoch start
    assert zeros / total == pytest.approx(expected, abs=1e-4)
    assert metrics["model/sparsity"] == pytest.approx(expected, abs=1e-4)
    untouched = weights["bert.embeddings.word_embeddings.weight"]
    assert (untouched == 0).float().mean() < 0.01


def test_lora_trains_only_adapter_and_head_weights(tmp_path: Path) -> None:
    cfg = validate(
        tiny_config(
            peft={"r": 4, "alpha": 8, "target_modules": ["query", "value"]}, trainer={"max_epochs": 1}
        )
    )
    # the same seed gives the same initial weights that train() starts from
    import lightning.pytorch as pl

    from experiments.config.registry import build_datamodule
    from lightning_modules import backbones

    dm = build_datamodule(cfg)
    dm.setup()
    pl.seed_everything(cfg.seed)
    before = {
        k: v.clone()
        for k, v in backbones.build_model(cfg, 2, dm.tokenizer, dm.label_names).state_dict().items()
    }
    metrics = train(cfg)
    after = load_file(tmp_path / "runs" / experiment_id(cfg) / "model.safetensors")
    assert set(after) == set(before)
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert changed, "nothing trained"
    assert all("lora_" in k or "classifier" in k for k in changed), sorted(changed)
    assert any("lora_A" in k for k in changed) and any("lora_B" in k for k in changed)
    assert any("classifier" in k for k in changed)
    assert metrics["model/trainable_params"] < metrics["model/total_params"] / 5


def test_freeze_layers_keeps_bottom_layers_fixed() -> None:
    from lightning_modules import backbones

    cfg = validate(tiny_config(model={"freeze_layers": 1}))
    from experiments.config.registry import build_datamodule

    dm = build_datamodule(cfg)
    dm.setup()
    model = backbones.build_model(cfg, 2, dm.tokenizer, dm.label_names)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".embeddings." in n or ".layer.0." in n for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".layer.1." in n)
    assert model.training and all(m.training for m in model.modules())  # dropout is on
    with pytest.raises(Exception, match="model.freeze_layers"):
        backbones.build_model(
            validate(tiny_config(model={"freeze_layers": 9})), 2, dm.tokenizer, dm.label_names
        )


def test_a_one_device_run_evaluates_each_split_once_after_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The val-chosen threshold, confusion matrix and per-class report come from the val/test
    passes that computed the metrics, not from two more passes over the splits."""
    from lightning_modules import evaluation

    calls: list[int] = []
    real = evaluation.predict
    monkeypatch.setattr(evaluation, "predict", lambda *a: calls.append(1) or real(*a))
    cfg = validate(tiny_config())
    metrics = train(cfg, tmp_path / "runs")
    assert calls == []
    report = json.loads((tmp_path / "runs" / experiment_id(cfg) / "per_class.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test/acc_at_threshold"], abs=1e-9)


def test_a_best_last_epoch_is_not_validated_twice_and_its_record_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the best checkpoint is the last epoch's, fit's last validation pass measured those very
    weights: its metrics are kept instead of a second pass, and every figure is the second pass's."""
    import lightning.pytorch as pl

    from experiments.run import single as train_module

    passes: list[int] = []
    real = pl.Trainer.validate
    monkeypatch.setattr(pl.Trainer, "validate", lambda self, *a, **k: passes.append(1) or real(self, *a, **k))
    cfg = validate(
        tiny_config(
            optim={"lr": 3e-3, "warmup": 0.0},
            trainer={"max_epochs": 2, "patience": 2, "monitor": "val/loss", "mode": "min"},
        )
    )
    fast = train(cfg, tmp_path / "fast")
    assert fast["best_epoch"] == fast["epochs_trained"] - 1, "the fixture's best epoch should be its last"
    assert passes == []
    monkeypatch.setattr(train_module, "last_pass_is_final", lambda trainer: False)
    slow = train(cfg, tmp_path / "slow")
    assert passes == [1]
    figures = lambda m: {k: v for k, v in m.items() if not is_timing(k)}  # noqa: E731
    assert figures(fast) == figures(slow)
    rec = lambda root: (root / experiment_id(cfg) / "per_class.json").read_text()  # noqa: E731
    assert rec(tmp_path / "fast") == rec(tmp_path / "slow")
