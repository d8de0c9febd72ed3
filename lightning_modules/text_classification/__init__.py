"""Text classification: review sentiment, ratings, product categories, intents, fake reviews.

Torch-free: the config reads `SPEC`; the LightningModule is in `module.py`.
"""

from __future__ import annotations

from lightning_modules.task import TaskSpec

SPEC = TaskSpec(
    name="text_classification",
    description="backbone + classification head; macro F1, accuracy, top-3 accuracy",
    metrics=("acc", "acc_top3", "f1", "precision", "recall", "loss"),
    monitor="val/f1",
    mode="max",
    final_metrics=("val/f1_best", "val/threshold", "test/f1_at_threshold", "test/acc_at_threshold"),
    module="lightning_modules.text_classification.module:TextClassificationModule",
    serving="lightning_modules.text_classification.serving",
    class_logits=True,
    baseline="lightning_modules.text_classification.baseline:fit",
    pipeline_tag="text-classification",
    zero_shot="lightning_modules.text_classification.zero_shot:fit",
)
