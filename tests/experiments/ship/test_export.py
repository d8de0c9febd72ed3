"""`ecomlab export`: a text run becomes a folder that plain transformers loads with the run's own
probabilities; price and click-through runs load with `load_model`; int8 and ONNX copies are scored
next to fp32; a study exports its best trial, a chosen trial or its Pareto front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.config import experiment_id, validate
from experiments.core.errors import EcomlabError
from experiments.run.train import train
from experiments.ship.export import export_run
from experiments.ship.predictor import load_model
from tests.conftest import FIXTURES, tiny_config

# Runs in a fresh interpreter that never imports ecomlab: what a user with only transformers does.
PLAIN_TRANSFORMERS = """
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts = sys.argv[1], json.loads(sys.stdin.read())
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
tok = AutoTokenizer.from_pretrained(folder)
with torch.no_grad():
    enc = tok(texts, truncation=True, padding=True, return_tensors="pt", return_token_type_ids=False)
    probs = torch.softmax(model(**enc).logits, -1)
assert not any(m.split(".")[0] in ("experiments", "lightning_modules", "datamodules") for m in sys.modules)
print(json.dumps({"probs": probs.tolist(), "id2label": model.config.id2label}))
"""


def _trained(cfg_dict: dict, runs: Path) -> tuple[str, object, object]:
    """Train `cfg_dict`; return its id with its rebuilt DataModule and module (the run's own model)."""
    from experiments.results import run_record
    from experiments.run.build import rebuild

    cfg = validate(cfg_dict)
    train(cfg)
    exp_id = experiment_id(cfg)
    dm, module = rebuild(cfg, run_record.read(runs, exp_id))
    return exp_id, dm, module


def test_a_lora_text_run_exports_a_plain_hugging_face_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    exp_id, dm, module = _trained(tiny_config(peft={"r": 4}), runs)
    out = tmp_path / "export"
    result = export_run(exp_id, out, runs, int8=True, onnx=True)

    # the run's own evaluation of the first test texts, from the token ids it trained on
    batch = dm.splits["test"].collate(list(range(8)))
    with torch.inference_mode():
        expected = torch.softmax(module.forward_batch(batch), -1)
    texts = dm.prepared().texts["test"][:8]
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_TRANSFORMERS, str(out)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    plain = json.loads(proc.stdout.strip().splitlines()[-1])
    torch.testing.assert_close(torch.tensor(plain["probs"]), expected, rtol=1e-5, atol=1e-6)
    assert plain["id2label"] == {"0": "negative", "1": "positive"}

    # LoRA is merged: a plain BERT folder, no adapter files, the tokenizer cuts where training did
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "ecomlab.json"} <= names
    assert not any("adapter" in n for n in names)
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 32
    info = json.loads((out / "ecomlab.json").read_text())
    metrics = json.loads((runs / exp_id / "metrics.json").read_text())
    assert info["experiment_id"] == exp_id and info["threshold"] == metrics["val/threshold"]
    card = (out / "README.md").read_text()
    assert (
        exp_id in card and f"ecomlab reproduce {exp_id}" in card and f"{metrics['val/threshold']:.4f}" in card
    )

    # int8 and ONNX copies, each scored on the test split next to fp32
    assert set(result.quality) == {"torch", "int8", "onnx", "onnx-int8"}
    assert result.quality["onnx"]["test/f1"] == pytest.approx(result.quality["torch"]["test/f1"])
    assert result.quality["torch"]["test/f1"] == pytest.approx(metrics["test/f1"], abs=1e-6)
    assert result.parity < 1e-5 and result.onnx_parity is not None and result.onnx_parity < 1e-4
    assert (
        result.size_mb["int8"] < result.size_mb["torch"]
        and result.size_mb["onnx-int8"] < result.size_mb["onnx"]
    )
    for runtime in ("torch", "int8", "onnx", "onnx-int8"):
        answers = load_model(out, runtime).predict([{"text": texts[0]}, {"text": "great " * 100}])
        assert answers[0]["label"] in ("negative", "positive") and "label_at_threshold" in answers[0]
        assert answers[1]["notes"] == ["truncated to 32 tokens"]
    fp32 = load_model(out).predict([{"text": texts[0]}])[0]["probabilities"]
    assert fp32["positive"] == pytest.approx(float(expected[0, 1]), abs=1e-5)


def test_an_export_refuses_a_folder_it_did_not_write_and_replaces_its_own(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cfg = validate(tiny_config())
    train(cfg)
    exp_id = experiment_id(cfg)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(EcomlabError, match="not an earlier export"):
        export_run(exp_id, busy, runs)
    assert (busy / "notes.txt").read_text() == "mine"
    out = tmp_path / "out"
    export_run(exp_id, out, runs)
    (out / "stale.txt").write_text("x")
    export_run(exp_id, out, runs)  # an earlier export is replaced whole
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    with pytest.raises(EcomlabError, match="no int8/model.pt"):
        load_model(out, "int8")


@pytest.mark.parametrize("backbone", ["tiny", "llama"])
def test_a_price_run_exports_weights_and_statistics_for_load_model(
    backbone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A price regressor, on the `tiny` encoder or a decoder (a tiny random Llama with LoRA, pooled
    at its last token), exports weights that `load_model` serves with the run's own predictions."""
    from datamodules.electronics_prices import ElectronicsPricesData
    from datamodules.price_data import unpack
    from tests.lightning_modules.test_decoders import tiny_decoder

    model = {"backbone": "tiny", "tiny": {"hidden": 32, "vocab_size": 200}}
    if backbone != "tiny":
        model = {"backbone": str(tiny_decoder(tmp_path, backbone))}

    monkeypatch.setattr(
        ElectronicsPricesData,
        "source_files",
        lambda self: [FIXTURES / "electronics" / "electronics_dataset.csv"],
    )
    runs = tmp_path / "runs"
    exp_id, dm, module = _trained(
        {
            "data": {
                "dataset": "electronics_prices",
                "max_length": 32,
                "batch_size": 8,
                "val_fraction": 0.2,
                "test_fraction": 0.2,
            },
            "model": model,
            "peft": {"r": 2},
            "trainer": {"max_epochs": 1},
            "tracking": {"mode": "disabled"},
        },
        runs,
    )
    out = tmp_path / "price"
    result = export_run(exp_id, out, runs)
    assert {"model.safetensors", "ecomlab.json", "README.md", "encoder"} <= {p.name for p in out.iterdir()}
    prep = dm.prepared()
    features = list(dm.meta["features"])
    rows = [
        {"text": t, **dict(zip(features, unpack([lab])[0, 1:].tolist()))}
        for t, lab in zip(prep.texts["test"][:6], prep.labels["test"][:6])
    ]
    with torch.inference_mode():
        expected = module.forward_batch(dm.splits["test"].collate(list(range(6))))
    got = [a["price"] for a in load_model(out).predict(rows)]
    torch.testing.assert_close(torch.tensor(got), expected, rtol=1e-4, atol=1e-3)
    assert result.quality["torch"]["test/rmse"] == pytest.approx(
        json.loads((runs / exp_id / "metrics.json").read_text())["test/rmse"], rel=1e-4
    )
    from lightning_modules.served import InputError

    with pytest.raises(InputError, match=f"row 0: missing field '{features[0]}'"):
        load_model(out).predict([{"text": "a laptop"}])


def test_a_click_through_run_serves_raw_feature_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datamodules.open_bandit import OpenBanditData

    obd = FIXTURES / "obd" / "random" / "all"
    monkeypatch.setattr(
        OpenBanditData, "source_files", lambda self: [obd / "all.csv", obd / "item_context.csv"]
    )
    runs = tmp_path / "runs"
    exp_id, dm, module = _trained(
        {
            "data": {"dataset": "open_bandit", "batch_size": 16},
            "trainer": {"max_epochs": 1},
            "tracking": {"mode": "disabled"},
        },
        runs,
    )
    out = tmp_path / "ctr"
    export_run(exp_id, out, runs, onnx=True)
    rows, _ = dm.cfg.read_rows(dm.source_files())
    rows = rows[:10]
    meta = dm.meta
    # by hand: each category through the train split's vocabulary (0 = unseen), numbers as they are
    batch = {
        "categorical": torch.tensor(
            [[meta["vocab"][c].get(str(r[c]), 0) for c in meta["categorical"]] for r in rows]
        ),
        "numeric": torch.tensor([[float(r[c]) for c in meta["numeric"]] for r in rows]),
    }
    with torch.inference_mode():
        expected = torch.sigmoid(module.forward_batch(batch))
    for runtime in ("torch", "onnx"):
        got = [a["click_probability"] for a in load_model(out, runtime).predict(rows)]
        torch.testing.assert_close(torch.tensor(got), expected, rtol=1e-4, atol=1e-5)
    unseen = {**rows[0], meta["categorical"][0]: "never-seen-item"}
    assert load_model(out).predict([unseen])[0]["notes"] == [f"unseen {meta['categorical'][0]}"]


def test_a_study_exports_its_best_trial_a_chosen_one_or_its_pareto_front(tmp_path: Path) -> None:
    import optuna

    from experiments.results.storage import default_storage_url
    from experiments.results.storage import storage as open_storage

    runs = tmp_path / "runs"
    ids = []
    for lr in (3e-3, 1e-3):
        cfg = validate(tiny_config(optim={"lr": lr}, trainer={"max_epochs": 1}))
        train(cfg)
        ids.append(experiment_id(cfg))
    rdb = open_storage(default_storage_url(runs))
    single = optuna.create_study(study_name="one", storage=rdb, direction="maximize")
    multi = optuna.create_study(study_name="two", storage=rdb, directions=["maximize", "minimize"])
    dist = {"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    for (value, latency), exp_id, lr in zip([(0.6, 2.0), (0.8, 3.0)], ids, (3e-3, 1e-3)):
        attrs = {"experiment_id": exp_id}
        single.add_trial(
            optuna.trial.create_trial(
                params={"optim.lr": lr}, distributions=dist, value=value, user_attrs=attrs
            )
        )
        multi.add_trial(
            optuna.trial.create_trial(
                params={"optim.lr": lr}, distributions=dist, values=[value, latency], user_attrs=attrs
            )
        )

    from typer.testing import CliRunner

    from experiments.cli import app

    def cli(*args: str) -> object:
        args = tuple(str(tmp_path / a) if a in ("best", "front", "chosen") else a for a in args)
        return CliRunner().invoke(app, ["export", *args])

    def refused(result: object, why: str) -> bool:
        return isinstance(result.exception, EcomlabError) and why in str(result.exception)

    assert cli("one", "--out", "best").exit_code == 0
    assert json.loads((tmp_path / "best" / "ecomlab.json").read_text())["experiment_id"] == ids[1]
    assert refused(cli("two"), "--pareto")
    assert cli("two", "--pareto", "--out", "front").exit_code == 0
    exported = {
        p.name: json.loads((p / "ecomlab.json").read_text())["experiment_id"]
        for p in (tmp_path / "front").iterdir()
    }
    assert exported == {"trial-0": ids[0], "trial-1": ids[1]}  # neither dominates the other
    assert cli("one", "--trial", "0", "--out", "chosen").exit_code == 0
    assert json.loads((tmp_path / "chosen" / "ecomlab.json").read_text())["experiment_id"] == ids[0]
    assert refused(cli("one", "--trial", "7"), "no completed trial 7")


def test_pruning_half_the_heads_and_ffn_neurons_shrinks_the_model_and_its_export_loads_plainly(
    tmp_path: Path,
) -> None:
    from transformers import AutoModelForSequenceClassification

    runs = tmp_path / "runs"
    dense = validate(tiny_config(trainer={"max_epochs": 1}))
    pruned = validate(tiny_config(trainer={"max_epochs": 1}, prune={"ffn": 0.5, "heads": 0.5}))
    assert experiment_id(dense) != experiment_id(pruned)
    m_dense, m_pruned = train(dense), train(pruned)
    # tiny 2x32 with 2 heads of 16: half the FFN is 64 neurons x (32 in + 32 out + 1 bias) per layer;
    # half the heads is 16 query/key/value rows x (32 + 1) and 16 output columns x 32 per layer
    ffn, heads = 64 * (32 + 32 + 1), 3 * 16 * 33 + 16 * 32
    assert m_dense["model/total_params"] - m_pruned["model/total_params"] == 2 * (ffn + heads)
    assert m_pruned["model/size_mb"] < m_dense["model/size_mb"]
    out = tmp_path / "pruned"
    export_run(experiment_id(pruned), out, runs, onnx=True)  # parity with the trained model is checked
    plain = AutoModelForSequenceClassification.from_pretrained(str(out))  # the config describes the files
    assert plain.config.intermediate_size == 64
    query = [layer.attention.self.query for layer in plain.bert.encoder.layer]
    assert all(q.out_features == 32 and not q.weight[16:].any() for q in query)  # the pruned head: zeros
    served = load_model(out).served.net.model  # served without the zero heads
    assert all(layer.attention.self.query.out_features == 16 for layer in served.bert.encoder.layer)
    dense_out = tmp_path / "dense"
    export_run(experiment_id(dense), dense_out, runs, onnx=True)
    assert (out / "onnx" / "model.onnx").stat().st_size < (dense_out / "onnx" / "model.onnx").stat().st_size


def test_int8_compression_reports_the_int8_models_metrics_and_keeps_fp32s(tmp_path: Path) -> None:
    from experiments.run.reproduce import reproduce

    cfg = validate(tiny_config(trainer={"max_epochs": 1}, compress={"int8": True}))
    plain = train(validate(tiny_config(trainer={"max_epochs": 1})))
    metrics = train(cfg)
    # the same training; what differs is the model the final metrics are measured on
    assert metrics["fp32/test/loss"] == pytest.approx(plain["test/loss"], abs=1e-6)
    assert metrics["test/loss"] != metrics["fp32/test/loss"]
    assert metrics["model/int8_size_mb"] < metrics["model/size_mb"]
    assert {"model/latency_ms", "model/latency_ms_b32"} <= set(metrics)
    assert reproduce(experiment_id(cfg)).identical  # fp32 weights saved, int8 metrics bit-identical
    # a LoRA run is measured as it is served: adapters merged, then quantised
    lora = train(validate(tiny_config(trainer={"max_epochs": 1}, peft={"r": 4}, compress={"int8": True})))
    assert lora["model/int8_size_mb"] < lora["model/size_mb"] and "fp32/test/f1" in lora


def test_compression_knobs_are_refused_where_they_cannot_apply() -> None:
    from experiments.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        validate(
            {
                "data": {"dataset": "open_bandit"},
                "prune": {"ffn": 0.5},
                "compress": {"int8": True},
                "trainer": {"devices": 2},
            }
        )
    assert "prune.ffn: task 'click_through' has no transformer FFN" in str(err.value)
    assert "compress.int8: dynamic int8 runs on one CPU device" in str(err.value)


@pytest.mark.parametrize("family", ["llama", "gemma3_text"])
def test_a_decoder_lora_run_exports_merged_and_plain_transformers_gives_its_outputs(
    family: str, tmp_path: Path
) -> None:
    """A decoder classifier with LoRA: merged into a plain folder that `AutoModelForSequenceClassification`
    and `AutoTokenizer` load in a process that never imports ecomlab, with the run's own probabilities;
    its int8 copy and `load_model` serve it, and so does `ecomlab serve` over loopback."""
    from tests.lightning_modules.test_decoders import decoder_config, tiny_decoder

    runs = tmp_path / "runs"
    folder = tiny_decoder(tmp_path, family)
    exp_id, dm, module = _trained(decoder_config(folder, peft={"r": 4}, trainer={"max_epochs": 1}), runs)
    out = tmp_path / "export"
    result = export_run(exp_id, out, runs, int8=True)
    batch = dm.splits["test"].collate(list(range(8)))
    with torch.inference_mode():
        expected = torch.softmax(module.forward_batch(batch), -1)
    texts = dm.prepared().texts["test"][:8]
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_TRANSFORMERS, str(out)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    plain = json.loads(proc.stdout.strip().splitlines()[-1])
    torch.testing.assert_close(torch.tensor(plain["probs"]), expected, rtol=1e-4, atol=1e-5)
    assert not any("adapter" in p.name for p in out.iterdir())
    assert json.loads((out / "config.json").read_text())["pad_token_id"] is not None
    assert set(result.quality) == {"torch", "int8"} and result.parity < 1e-4
    answer = load_model(out, "int8").predict([{"text": texts[0]}])[0]
    assert answer["label"] in ("negative", "positive")
    from tests.experiments.ship.conftest import predict, start_server

    port, server = start_server(out)  # `ecomlab serve` over loopback answers with the merged decoder
    try:
        status, body = predict(port, {"texts": texts[:3]})
        assert status == 200
        assert body["predictions"] == load_model(out).predict([{"text": t} for t in texts[:3]])
    finally:
        server.kill()
        server.wait()
