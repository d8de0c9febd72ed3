"""`ecomlab export`: a finished run as a folder that leaves the workbench.

A text classifier becomes a plain Hugging Face folder (`from_pretrained` loads model and tokenizer
without ecomlab); price and click-through models, which are not Hugging Face architectures, become
`model.safetensors` plus the statistics they need, read back by `ecomlab.load_model(DIR)`. Every
export also holds `ecomlab.json` (experiment id, task, metrics, the val-chosen threshold, what the
task serves) and a model card (`README.md`). `--int8` adds a dynamically quantised copy and `--onnx`
an ONNX graph checked against onnxruntime; both are scored on the test split next to fp32.

The per-task parts (what is written, how it is read back, how outputs are scored, its model-card
tag) are declared once in each task's `serving.py` and `TaskSpec`; this module is the same for every
task.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from experiments.config.registry import TASKS
from experiments.core.errors import EcomlabError, RunRecordError
from experiments.results import run_record
from experiments.run.build import rebuild
from experiments.ship.predictor import (
    EXPORT_VERSION,
    INFO_FILE,
    INT8_FILE,
    ONNX_FILE,
    ONNX_INT8_FILE,
    Predictor,
    quiet_transformers,
    runtime_file,
)

# |exported - trained| allowed on each served output, fp32: this much of the output where it is over 1,
# else absolute (a price of 250 merged from LoRA differs in its 7th digit, a logit in its 5th)
PARITY_TOLERANCE = 1e-4


# --- export ---------------------------------------------------------------------------------------
@dataclass
class Export:
    """What `export_run` wrote and measured."""

    folder: Path
    exp_id: str
    parity: float  # max |exported fp32 - trained module| on a test batch
    onnx_parity: float | None = None  # max |onnxruntime - torch fp32| on the same batch
    quality: dict[str, dict[str, float]] = field(default_factory=dict)  # runtime -> test metrics
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # runtime -> batch 1 / 32
    size_mb: dict[str, float] = field(default_factory=dict)  # runtime -> weight file size


def _test_batches(dm: Any, size: int) -> list[dict[str, Any]]:
    split = dm.splits["test"]
    return [split.collate(list(range(i, min(i + size, len(split))))) for i in range(0, len(split), size)]


def _outputs(forward: Any, served: Any, batches: list[dict[str, Any]]) -> tuple[Any, Any]:
    import numpy as np

    outs = [forward({n: b[n] for n in served.input_names}).float().numpy() for b in batches]
    return np.concatenate(outs), np.concatenate([b["labels"].numpy() for b in batches])


def _latency(forward: Any, served: Any, example: dict[str, Any], max_length: int | None) -> dict[str, float]:
    """Median ms of one forward pass at batch 1 and 32, sequences at the data's `max_length`."""
    from lightning_modules.served import median_ms

    inputs = {n: example[n] for n in served.input_names}
    return {f"batch{b}": round(median_ms(forward, inputs, b, max_length), 3) for b in (1, 32)}


def _export_onnx(served: Any, example: dict[str, Any], path: Path) -> None:
    import warnings

    import torch

    names = list(served.input_names)
    axes = {n: ({0: "batch", 1: "sequence"} if n in served.seq_inputs else {0: "batch"}) for n in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    net = served.net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: seconds for a BERT, where the dynamo one takes tens of seconds
        torch.onnx.export(
            net,
            tuple(example[n] for n in names),
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_axes={**axes, "output": {0: "batch"}},
            opset_version=18,
            dynamo=False,
        )
    net.eval()  # the exporter restores the mode it found; make sure it is inference


def _model_card(info: dict[str, Any], exp: Export) -> str:
    m = info["metrics"]
    shown = {
        k: v
        for k, v in sorted(m.items())
        if isinstance(v, (int, float)) and k.split("/")[0] in ("val", "test")
    }
    lines = [
        "---",
        "library_name: transformers" if info["serving"]["format"] == "hf" else "library_name: pytorch",
        f"pipeline_tag: {TASKS[info['task']].pipeline_tag}",
        f"tags: [ecomlab, {info['task']}, {info['dataset']}]",
        "---",
        "",
        f"# ecomlab {info['task']} on {info['dataset']} (experiment {info['experiment_id']})",
        "",
        f"Trained by ecomlab from `runs/{info['experiment_id']}/config.yaml`; `{info['reproduce']}` re-runs it "
        "and compares every metric and the weights' sha256.",
        "",
    ]
    if info["serving"]["format"] == "hf":
        lines += [
            "```python",
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            'model = AutoModelForSequenceClassification.from_pretrained("THIS_FOLDER")',
            'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")',
            "```",
            "",
        ]
    else:
        lines += [
            "```python",
            "import ecomlab",
            'ecomlab.load_model("THIS_FOLDER").predict([{...}])  # fields: see ecomlab.json',
            "```",
            "",
        ]
    if labels := info["serving"].get("labels"):
        lines += [f"Labels: {', '.join(f'`{x}`' for x in labels)}.", ""]
    if info.get("threshold") is not None:
        lines += [
            f"Decision threshold chosen on val (best F1 of the positive class): {info['threshold']:.4f}.",
            "",
        ]
    lines += ["## Metrics of the run", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in shown.items()]
    if exp.quality:
        metric_names = sorted({k for q in exp.quality.values() for k in q})
        lines += [
            "",
            "## Runtimes (test split, this machine)",
            "",
            "| runtime | " + " | ".join(metric_names) + " | ms batch 1 | ms batch 32 | MB |",
            "|---" * (len(metric_names) + 4) + "|",
        ]
        for rt, q in exp.quality.items():
            lat = exp.latency_ms.get(rt, {})
            lines.append(
                f"| {rt} | "
                + " | ".join(f"{q.get(k, float('nan')):.4f}" for k in metric_names)
                + f" | {lat.get('batch1', '-')} | {lat.get('batch32', '-')} | {exp.size_mb.get(rt, '-')} |"
            )
    return "\n".join(lines) + "\n"


def _weights_mb(folder: Path, runtime: str) -> float:
    if f := runtime_file(runtime):
        return round((folder / f).stat().st_size / 1e6, 3)
    return round(sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 1e6, 3)


def export_run(
    exp_id: str,
    out: Path,
    runs_root: Path,
    *,
    int8: bool = False,
    onnx: bool = False,
    console: Console | None = None,
) -> Export:
    """Export run `exp_id` into `out` (replaced if it is an earlier export; refused if it holds
    anything else). The folder appears complete or not at all."""
    import torch

    from experiments.config.schema import validate
    from lightning_modules.served import quantize_int8

    console = console or Console()
    quiet_transformers()
    rec = run_record.read(runs_root, exp_id)
    if not rec.completed:
        raise RunRecordError(f"Run {exp_id} did not complete (no metrics.json); there is no model to export.")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / INFO_FILE).is_file())):
        raise EcomlabError(
            f"{out} exists and is not an earlier export; give an empty or new folder with --out."
        )
    cfg = validate(rec.config, source=str(rec.path / "config.yaml"))
    serving = TASKS[cfg.task].serving_module()
    if serving is None:
        raise EcomlabError(f"task {cfg.task} declares no serving module; it cannot be exported.")
    console.print(f"Exporting {exp_id} ({cfg.task} on {cfg.data.dataset}) -> {out}")
    dm, module = rebuild(cfg, rec)
    batches = _test_batches(dm, 32)
    metrics = rec.metrics or {}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        with torch.inference_mode():
            reference = module.forward_batch(batches[0]).float()
        info = {
            "ecomlab_export": EXPORT_VERSION,
            "experiment_id": exp_id,
            "task": cfg.task,
            "dataset": cfg.data.dataset,
            "threshold": metrics.get("val/threshold"),
            "metrics": metrics,
            "serving": serving.export(module, dm, cfg, tmp),
            "reproduce": f"ecomlab reproduce {exp_id}",
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        exported = Predictor(tmp)  # read back from the files, as a user would
        served = exported.served
        diff = (exported.forward(batches[0]) - reference).abs()
        parity = float(diff.max())
        if not bool((diff <= PARITY_TOLERANCE * reference.abs().clamp(min=1.0)).all()):
            raise EcomlabError(
                f"export of {exp_id}: the exported model's outputs differ from the trained one's "
                f"by {parity:.2e} (more than {PARITY_TOLERANCE} of an output, or of 1 for outputs "
                "under 1); nothing was written."
            )
        result = Export(out, exp_id, parity)
        runtimes: dict[str, Any] = {"torch": exported.forward}
        if int8:
            (tmp / INT8_FILE).parent.mkdir(parents=True, exist_ok=True)
            torch.save(quantize_int8(served.net).state_dict(), tmp / INT8_FILE)
            runtimes["int8"] = Predictor(tmp, "int8").forward
        if onnx:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            _export_onnx(served, batches[0], tmp / ONNX_FILE)
            runtimes["onnx"] = Predictor(tmp, "onnx").forward
            result.onnx_parity = float((runtimes["onnx"](batches[0]) - reference).abs().max())
            if int8:
                import logging

                root = logging.getLogger()
                level, _ = root.level, root.setLevel(logging.ERROR)  # its advice to pre-process first
                try:
                    quantize_dynamic(
                        str(tmp / ONNX_FILE), str(tmp / ONNX_INT8_FILE), weight_type=QuantType.QInt8
                    )
                finally:
                    root.setLevel(level)
                runtimes["onnx-int8"] = Predictor(tmp, "onnx-int8").forward
        max_length = getattr(cfg.data, "max_length", None) if TASKS[cfg.task].text_encoder else None
        for rt, forward in runtimes.items():
            outputs, labels = _outputs(forward, served, batches)
            result.quality[rt] = serving.quality(outputs, labels)
            result.latency_ms[rt] = _latency(forward, served, batches[0], max_length)
            result.size_mb[rt] = _weights_mb(tmp, rt)
        info["runtimes"] = {
            rt: {
                "quality": result.quality[rt],
                "latency_ms": result.latency_ms[rt],
                "size_mb": result.size_mb[rt],
            }
            for rt in runtimes
        }
        info["parity"] = {"torch": parity, "onnx": result.onnx_parity}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_model_card(info, result), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    show(result, console)
    return result


def show(exp: Export, console: Console) -> None:
    table = Table(title=f"Export of {exp.exp_id}: {exp.folder}")
    names = sorted({k for q in exp.quality.values() for k in q})
    for col in ("runtime", *names, "ms batch 1", "ms batch 32", "MB"):
        table.add_column(col, justify="right" if col != "runtime" else "left")
    for rt, q in exp.quality.items():
        lat = exp.latency_ms[rt]
        table.add_row(
            rt,
            *(f"{q[k]:.4f}" for k in names),
            f"{lat['batch1']:.2f}",
            f"{lat['batch32']:.2f}",
            f"{exp.size_mb[rt]:.2f}",
        )
    console.print(table)
    console.print(
        f"parity with the trained model: max |Δ| = {exp.parity:.2e}"
        + (f"; onnxruntime vs torch: {exp.onnx_parity:.2e}" if exp.onnx_parity is not None else "")
    )


def study_trials(study: Any, trial: int | None, pareto: bool) -> list[Any]:
    """The trials `ecomlab export STUDY` exports: the best (single objective), `--trial N`, or with
    `--pareto` every trial on the front of a multi-objective study."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if trial is not None:
        chosen = [t for t in done if t.number == trial]
        if not chosen:
            raise EcomlabError(
                f"Study {study.study_name} has no completed trial {trial} "
                f"(completed: {', '.join(str(t.number) for t in done) or 'none'})."
            )
        return chosen
    if not done:
        raise EcomlabError(f"Study {study.study_name} has no completed trial yet.")
    if len(study.directions) > 1:
        if not pareto:
            raise EcomlabError(
                f"Study {study.study_name} is multi-objective: export its Pareto front with --pareto "
                "or one trial with --trial N (`ecomlab study show` lists them)."
            )
        return list(study.best_trials)
    return [study.best_trial]
