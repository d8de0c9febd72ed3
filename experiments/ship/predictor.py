"""`load_model(DIR)`: an exported folder read back and ready to answer (`Predictor`), in any of its
runtimes: torch fp32, torch dynamic int8, ONNX and ONNX int8 (onnxruntime).

What a task writes and how it is read back is declared once in its `serving.py`; this module is the
same for every task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from experiments.core.errors import EcomlabError

INFO_FILE = "ecomlab.json"
EXPORT_VERSION = 1
RUNTIMES = ("torch", "int8", "onnx", "onnx-int8")
INT8_FILE = "int8/model.pt"
ONNX_FILE = "onnx/model.onnx"
ONNX_INT8_FILE = "onnx/model.int8.onnx"


def runtime_file(runtime: str) -> str | None:
    return {"int8": INT8_FILE, "onnx": ONNX_FILE, "onnx-int8": ONNX_INT8_FILE}.get(runtime)


def quiet_transformers() -> None:
    """No per-file progress bars from transformers (a server log or an export's table is the output)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def read_info(folder: Path) -> dict[str, Any]:
    f = folder / INFO_FILE
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EcomlabError(
            f"{folder} is not an ecomlab export: {f} cannot be read ({exc}). "
            "Write one with `ecomlab export ID --out DIR`."
        ) from None
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

        from experiments.config.registry import TASKS

        quiet_transformers()
        self.folder = Path(folder)
        self.info = read_info(self.folder)
        if runtime not in RUNTIMES:
            raise EcomlabError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        if (f := runtime_file(runtime)) and not (self.folder / f).is_file():
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

            self._session = ort.InferenceSession(
                str(self.folder / runtime_file(runtime)), providers=["CPUExecutionProvider"]
            )

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
