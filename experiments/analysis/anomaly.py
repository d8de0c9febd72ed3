"""An unsupervised review-anomaly score, usable on any set of reviews.

Every review is embedded by an encoder (the bundled MiniLM, any backbone, or the fine-tuned encoder
of a run record) as its mean-pooled last hidden state, L2-normalised. Two things make a review
suspicious, and both are measured on the cosine distances to the other reviews of the same set:

- **off-topic**: far from everything else: the distance to its k-th nearest neighbour is large;
- **near-duplicate**: suspiciously close to another review (copy-paste, template spam): the distance
  to its nearest neighbour is tiny.

Each side is a robust z-score of the log distance (median and MAD over the set), so the score means
the same on any review set: `score = max(z_far, z_close)`, and `kind` says which side fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.errors import EcomlabError

MAD_TO_SIGMA = 1.4826


@dataclass
class Encoder:
    tokenizer: Any
    model: Any  # returns hidden states
    max_length: int
    source: str


@dataclass
class AnomalyScores:
    score: np.ndarray  # max(z_far, z_close)
    z_far: np.ndarray
    z_close: np.ndarray
    nearest: np.ndarray  # index of the nearest other review
    nearest_similarity: np.ndarray

    def kind(self, threshold: float) -> list[str]:
        out = []
        for far, close in zip(self.z_far, self.z_close):
            out.append(
                "" if max(far, close) < threshold else ("near_duplicate" if close >= far else "off_topic")
            )
        return out


def load_encoder(source: str, runs_root: Path, max_length: int = 128) -> Encoder:
    """A plain backbone (`minilm`, a from_pretrained id or folder) or the encoder of a run record."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from experiments.results import run_record
    from lightning_modules import backbones

    if run_record.ID_PATTERN.match(source):
        return _record_encoder(source, runs_root)
    path = backbones.resolve(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise EcomlabError(
            f"--model {source!r}: cannot load it with from_pretrained: {str(exc).splitlines()[0]}"
        ) from None
    model.eval()
    torch.set_grad_enabled(False)
    return Encoder(tokenizer, model, max_length, source)


def _record_encoder(exp_id: str, runs_root: Path) -> Encoder:
    """Rebuild a completed text run's model from its record (config + model.safetensors)."""
    from safetensors.torch import load_model

    from experiments.config.registry import TASKS, build_datamodule, build_module
    from experiments.config.schema import validate
    from experiments.results import run_record

    rec = run_record.read(runs_root, exp_id)
    weights = rec.path / "model.safetensors"
    if not weights.is_file():
        raise EcomlabError(
            f"run {exp_id} has no model.safetensors (not completed, or trainer.save_weights was off)."
        )
    cfg = validate(rec.config, source=str(rec.path / "config.yaml"))
    if not TASKS[cfg.task].text_encoder:
        raise EcomlabError(f"run {exp_id} is a {cfg.task} model: it has no text encoder.")
    dm = build_datamodule(cfg, augment=False, fold=rec.fold)  # a cross-validated run's: its chosen fold
    dm.setup("fit")  # the tokenizer (the `tiny` one is built from the train split) and the label set
    module = build_module(cfg, dm)
    load_model(module.model, str(weights))
    model = getattr(module.model, "encoder", module.model)  # price models wrap the encoder
    model.eval()
    return Encoder(dm.tokenizer, model, cfg.data.max_length, f"run {exp_id}")


def embed(enc: Encoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Mean-pooled last hidden states, L2-normalised: one row per text."""
    import torch

    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = enc.tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                max_length=enc.max_length,
                padding=True,
                return_tensors="pt",
            )
            batch.pop("token_type_ids", None)
            out = enc.model(**batch, output_hidden_states=True)
            hidden = out.hidden_states[-1]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 1), dtype=np.float32)


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med))) * MAD_TO_SIGMA
    return (x - med) / (mad if mad > 1e-12 else 1e-12)


def score(embeddings: np.ndarray, k: int = 10, chunk: int = 2048) -> AnomalyScores:
    """Anomaly scores of L2-normalised embeddings (exact neighbours, in chunks: O(n^2) time, O(n) memory)."""
    n = len(embeddings)
    if n < 3:
        raise EcomlabError(f"anomaly: need at least 3 texts to compare (got {n}).")
    k = max(1, min(k, n - 1))
    nearest = np.zeros(n, dtype=np.int64)
    sim1 = np.zeros(n)
    simk = np.zeros(n)
    emb = embeddings.astype(np.float32)
    for start in range(0, n, chunk):
        sims = emb[start : start + chunk] @ emb.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not oneself
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        nearest[start : start + len(rows)] = np.take_along_axis(top, order[:, :1], axis=1)[:, 0]
        sim1[start : start + len(rows)] = np.take_along_axis(top_sims, order[:, :1], axis=1)[:, 0]
        simk[start : start + len(rows)] = np.take_along_axis(top_sims, order[:, -1:], axis=1)[:, 0]
    eps = 1e-6
    d1 = np.clip(1.0 - sim1, eps, 2.0)
    dk = np.clip(1.0 - simk, eps, 2.0)
    z_far = np.maximum(_robust_z(np.log(dk)), 0.0)
    z_close = np.maximum(-_robust_z(np.log(d1)), 0.0)
    return AnomalyScores(np.maximum(z_far, z_close), z_far, z_close, nearest, sim1)


def auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(is_anomaly.astype(int), scores))


def read_texts(path: Path, column: str) -> list[str]:
    """The non-empty texts of one column of a CSV / JSONL / Parquet file (rows without text skipped)."""
    import pandas as pd

    if not path.is_file():
        raise EcomlabError(f"anomaly: file not found: {path}")
    suffix = path.suffix.lower()
    try:
        df = (
            pd.read_parquet(path)
            if suffix == ".parquet"
            else pd.read_json(path, lines=True)
            if suffix in (".jsonl", ".json")
            else pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                dtype=str,
                keep_default_na=False,
                on_bad_lines="warn",
                encoding_errors="replace",
            )
        )
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds for a broken file
        raise EcomlabError(f"anomaly: cannot read {path}: {str(exc).splitlines()[0]}") from None
    if column not in df.columns:
        raise EcomlabError(
            f"anomaly: {path} has no column {column!r}; columns: {', '.join(map(str, df.columns))}"
        )
    return [t for t in df[column].tolist() if isinstance(t, str) and t.strip()]
