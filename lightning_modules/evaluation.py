"""After-training evaluation shared by the task modules: predictions over a split, a decision
threshold chosen on validation, and the confusion-matrix / residual PNGs of a run record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


@torch.inference_mode()
def predict(module: Any, loader: Any) -> tuple[np.ndarray, np.ndarray]:
    """(outputs, targets) of `module.forward_batch` over a loader, in eval mode, as numpy arrays."""
    was_training = module.training
    module.eval()
    outs, targets = [], []
    for batch in loader:
        batch = {k: v.to(module.device) for k, v in batch.items()}
        outs.append(module.forward_batch(batch).float().cpu())
        targets.append(batch["labels"].cpu())
    module.train(was_training)
    return torch.cat(outs).numpy(), torch.cat(targets).numpy()


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold that maximises F1 of the positive class (label 1) on these examples.

    Candidates are the midpoints between distinct sorted scores; ties go to the higher threshold.
    """
    from sklearn.metrics import precision_recall_curve

    if labels.sum() == 0 or labels.sum() == len(labels):
        return 0.5
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = np.where(
        precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0
    )[:-1]
    return float(thresholds[int(np.argmax(f1))])


def save_confusion_matrix(
    labels: np.ndarray, preds: np.ndarray, names: list[str], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(labels, preds, labels=list(range(len(names))))
    size = max(4.0, min(24.0, 0.35 * len(names) + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7 if len(names) > 20 else 9)
    ax.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 20 else 9)
    if len(names) <= 20:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                    fontsize=8,
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def save_residuals(targets: np.ndarray, preds: np.ndarray, path: Path, title: str, unit: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    a.scatter(targets, preds, s=8, alpha=0.6)
    lo, hi = float(min(targets.min(), preds.min())), float(max(targets.max(), preds.max()))
    a.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    a.set_xlabel(f"true {unit}".strip())
    a.set_ylabel(f"predicted {unit}".strip())
    b.scatter(preds, targets - preds, s=8, alpha=0.6)
    b.axhline(0, color="grey", linewidth=1)
    b.set_xlabel(f"predicted {unit}".strip())
    b.set_ylabel("residual (true - predicted)")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
