"""`ecomlab export`: a finished run as a folder that leaves the workbench, and `load_model` to read it.

A text classifier becomes a plain Hugging Face folder (`from_pretrained` loads model and tokenizer
without ecomlab); price and click-through models, which are not Hugging Face architectures, become
`model.safetensors` plus the statistics they need, read back by `load_model(DIR)`. Every export
also holds `ecomlab.json` (experiment id, task, metrics, the val-chosen threshold, what the task
serves) and a model card (`README.md`). `--int8` adds a dynamically quantised copy and `--onnx` an
ONNX graph checked against onnxruntime; both are scored on the test split next to fp32.

The per-task parts (what is written, how it is read back, how outputs are scored) are declared once
in each task's `serving.py`; this module is the same for every task.
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

from experiments import run_record
from experiments.core.errors import EcomlabError, RunRecordError

INFO_FILE = "ecomlab.json"
EXPORT_VERSION = 1
RUNTIMES = ("torch", "int8", "onnx", "onnx-int8")
INT8_FILE = "int8/model.pt"
ONNX_FILE = "onnx/model.onnx"
ONNX_INT8_FILE = "onnx/model.int8.onnx"
PARITY_TOLERANCE = 1e-4  # max |exported - trained| on the served output, fp32
# the Hugging Face model-card tag of each task
PIPELINE_TAGS = {"text_classification": "text-classification", "price_regression": "tabular-regression",
                 "click_through": "tabular-classification"}  # fmt: skip


def _runtime_file(runtime: str) -> str | None:
    return {"int8": INT8_FILE, "onnx": ONNX_FILE, "onnx-int8": ONNX_INT8_FILE}.get(runtime)


def _quiet() -> None:
    """No per-file progress bars from transformers (a server log or an export's table is the output)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def read_info(folder: Path) -> dict[str, Any]:
    f = folder / INFO_FILE
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EcomlabError(f"{folder} is not an ecomlab export: {f} cannot be read ({exc}). "
                           "Write one with `ecomlab export ID --out DIR`.") from None  # fmt: skip
    if not isinstance(info, dict) or info.get("ecomlab_export") != EXPORT_VERSION:
        raise EcomlabError(f"{f}: not an ecomlab export of version {EXPORT_VERSION}.")
    return info


class Predictor:
    """An exported model ready to answer: `predict(rows)` -> one answer dict per row.

    Args:
        folder: what `ecomlab export` wrote.
        runtime: `torch` (fp32), `int8` (torch dynamic int8), `onnx` or `onnx-int8` (onnxruntime);
            the files for the last three are there when the export used `--int8` / `--onnx`.
    """

    def __init__(self, folder: str | Path, runtime: str = "torch") -> None:
        import torch

        from experiments.registry import TASKS

        _quiet()
        self.folder = Path(folder)
        self.info = read_info(self.folder)
        if runtime not in RUNTIMES:
            raise EcomlabError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        if (f := _runtime_file(runtime)) and not (self.folder / f).is_file():
            flag = "--int8" if runtime == "int8" else "--onnx" + (" --int8" if runtime == "onnx-int8" else "")
            raise EcomlabError(f"{self.folder} has no {f}: export it with `ecomlab export ... {flag}`.")
        self.runtime = runtime
        self.served = TASKS[self.info["task"]].serving_module().load(self.folder, self.info)
        self.net = self.served.net
        self._session = None
        if runtime == "int8":
            from lightning_modules.served import quantize_int8

            self.net = quantize_int8(self.served.net)
            self.net.load_state_dict(
                torch.load(self.folder / INT8_FILE, map_location="cpu", weights_only=True)
            )
        elif runtime.startswith("onnx"):
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(self.folder / _runtime_file(runtime)),
                                                 providers=["CPUExecutionProvider"])  # fmt: skip

    @property
    def fields(self) -> dict[str, str]:
        return self.served.fields

    def forward(self, inputs: dict[str, Any]) -> Any:
        """The served output (a tensor, batch first) of encoded inputs."""
        import torch

        names = self.served.input_names
        if self._session is not None:
            out = self._session.run(None, {n: inputs[n].numpy() for n in names})[0]
            return torch.from_numpy(out)
        with torch.inference_mode():
            return self.net(*(inputs[n] for n in names))

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answers for request rows (`{"text": ...}` or the task's fields); raises InputError on a bad row."""
        inputs, notes = self.served.encode(rows)
        answers = self.served.decode(self.forward(inputs))
        for a, n in zip(answers, notes):
            if n:
                a["notes"] = n
        return answers


def load_model(folder: str | Path, runtime: str = "torch") -> Predictor:
    """Load what `ecomlab export` wrote; `load_model(DIR).predict([{"text": "..."}])`."""
    return Predictor(folder, runtime)


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


def rebuild(cfg: Any, rec: run_record.RunRecord) -> tuple[Any, Any]:
    """The set-up DataModule and the trained module of a record (weights from model.safetensors)."""
    import io

    from safetensors.torch import load_model as load_weights

    from experiments.registry import build_datamodule, build_module
    from experiments.train import _seed_and_determinism

    weights = rec.path / "model.safetensors"
    if not weights.is_file():
        raise RunRecordError(
            f"Run {rec.exp_id} has no model.safetensors (trainer.save_weights was off, or its record was "
            "fetched from an artifact store without weights: set `artifacts.weights: true`). Run it again "
            f"with `ecomlab run {rec.path / 'config.yaml'} --force`."
        )
    _seed_and_determinism(cfg)
    # the originals (never augmented); a cross-validated run's model on its chosen fold's split
    dm = build_datamodule(cfg, console=Console(file=io.StringIO()), augment=False, fold=rec.fold)
    dm.prepare_data()
    dm.setup("fit")
    _seed_and_determinism(cfg)
    module = build_module(cfg, dm)
    load_weights(module.model, str(weights))
    return dm, module.eval()


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
        torch.onnx.export(net, tuple(example[n] for n in names), str(path), input_names=names,
                          output_names=["output"], dynamic_axes={**axes, "output": {0: "batch"}},
                          opset_version=18, dynamo=False)  # fmt: skip
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
        f"pipeline_tag: {PIPELINE_TAGS.get(info['task'], 'other')}",
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
        lines += ["```python", "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
                  'model = AutoModelForSequenceClassification.from_pretrained("THIS_FOLDER")',
                  'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")', "```", ""]  # fmt: skip
    else:
        lines += ["```python", "from experiments.export import load_model",
                  'load_model("THIS_FOLDER").predict([{...}])  # fields: see ecomlab.json', "```", ""]  # fmt: skip
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
        lines += ["", "## Runtimes (test split, this machine)", "",
                  "| runtime | " + " | ".join(metric_names) + " | ms batch 1 | ms batch 32 | MB |",
                  "|---" * (len(metric_names) + 4) + "|"]  # fmt: skip
        for rt, q in exp.quality.items():
            lat = exp.latency_ms.get(rt, {})
            lines.append(f"| {rt} | " + " | ".join(f"{q.get(k, float('nan')):.4f}" for k in metric_names)
                         + f" | {lat.get('batch1', '-')} | {lat.get('batch32', '-')} | {exp.size_mb.get(rt, '-')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _weights_mb(folder: Path, runtime: str) -> float:
    if f := _runtime_file(runtime):
        return round((folder / f).stat().st_size / 1e6, 3)
    return round(sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 1e6, 3)


def export_run(exp_id: str, out: Path, runs_root: Path, *, int8: bool = False, onnx: bool = False,
               console: Console | None = None) -> Export:  # fmt: skip
    """Export run `exp_id` into `out` (replaced if it is an earlier export; refused if it holds
    anything else). The folder appears complete or not at all."""
    import torch

    from experiments.config import validate
    from experiments.registry import TASKS
    from lightning_modules.served import quantize_int8

    console = console or Console()
    _quiet()
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
            "ecomlab_export": EXPORT_VERSION, "experiment_id": exp_id, "task": cfg.task, "dataset": cfg.data.dataset,
            "threshold": metrics.get("val/threshold"), "metrics": metrics,
            "serving": serving.export(module, dm, cfg, tmp), "reproduce": f"ecomlab reproduce {exp_id}",
        }  # fmt: skip
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        exported = Predictor(tmp)  # read back from the files, as a user would
        served = exported.served
        parity = float((exported.forward(batches[0]) - reference).abs().max())
        if parity > PARITY_TOLERANCE:
            raise EcomlabError(f"export of {exp_id}: the exported model's outputs differ from the trained one's "
                               f"by {parity:.2e} (> {PARITY_TOLERANCE}); nothing was written.")  # fmt: skip
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
        info["runtimes"] = {rt: {"quality": result.quality[rt], "latency_ms": result.latency_ms[rt],
                                 "size_mb": result.size_mb[rt]} for rt in runtimes}  # fmt: skip
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
        table.add_row(rt, *(f"{q[k]:.4f}" for k in names), f"{lat['batch1']:.2f}", f"{lat['batch32']:.2f}",
                      f"{exp.size_mb[rt]:.2f}")  # fmt: skip
    console.print(table)
    console.print(f"parity with the trained model: max |Δ| = {exp.parity:.2e}"
                  + (f"; onnxruntime vs torch: {exp.onnx_parity:.2e}" if exp.onnx_parity is not None else ""))  # fmt: skip


def study_trials(study: Any, trial: int | None, pareto: bool) -> list[Any]:
    """The trials `ecomlab export STUDY` exports: the best (single objective), `--trial N`, or with
    `--pareto` every trial on the front of a multi-objective study."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if trial is not None:
        chosen = [t for t in done if t.number == trial]
        if not chosen:
            raise EcomlabError(f"Study {study.study_name} has no completed trial {trial} "
                               f"(completed: {', '.join(str(t.number) for t in done) or 'none'}).")  # fmt: skip
        return chosen
    if not done:
        raise EcomlabError(f"Study {study.study_name} has no completed trial yet.")
    if len(study.directions) > 1:
        if not pareto:
            raise EcomlabError(f"Study {study.study_name} is multi-objective: export its Pareto front with --pareto "
                               "or one trial with --trial N (`ecomlab study show` lists them).")  # fmt: skip
        return list(study.best_trials)
    return [study.best_trial]
