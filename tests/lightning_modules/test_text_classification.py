"""TextClassificationModule: learns, logs the documented metrics, schedules the learning rate."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from experiments.config import validate
from experiments.config.registry import build_datamodule
from lightning_modules import backbones
from lightning_modules.text_classification.module import TextClassificationModule
from tests.conftest import tiny_config


def setup_module_and_data(model: dict | None = None, **optim):
    cfg = validate(tiny_config(model=model or {}))
    dm = build_datamodule(cfg)
    dm.setup()
    pl.seed_everything(0)
    model = backbones.build_model(cfg, 2, dm.tokenizer, dm.label_names)
    return TextClassificationModule(model, 2, **optim), dm


def test_overfits_one_batch() -> None:
    no_dropout = {"hidden_dropout": 0.0, "attention_dropout": 0.0, "classifier_dropout": 0.0}
    module, dm = setup_module_and_data(no_dropout, lr=3e-3, warmup=0.0, schedule="constant")
    trainer = pl.Trainer(
        overfit_batches=1,
        max_epochs=30,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batch = next(iter(dm._loader("train", shuffle=False)))  # the batch overfit_batches=1 trains on
    module.eval()
    with torch.no_grad():
        before = module.loss(module.raw_output(batch), batch).item()
    module.train()
    trainer.fit(module, train_dataloaders=dm.train_dataloader())
    module.eval()
    with torch.no_grad():
        logits = module.raw_output(batch)
        loss = module.loss(logits, batch)
    assert loss.item() < before / 4
    assert (logits.argmax(-1) == batch["labels"]).float().mean() == 1.0


def test_logs_every_documented_metric() -> None:
    module, dm = setup_module_and_data()
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    logged = set(trainer.callback_metrics)
    trainer.test(module, datamodule=dm, verbose=False)
    logged |= set(trainer.callback_metrics)
    for split in ("train", "val", "test"):
        for m in TextClassificationModule.spec.metrics:
            assert f"{split}/{m}" in logged, f"{split}/{m}"
    assert "val/f1_best" in logged


def test_warmup_then_linear_decay() -> None:
    module, dm = setup_module_and_data(lr=1e-3, warmup=0.5, schedule="linear")
    lrs: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=dm)
    peak = lrs.index(max(lrs))
    assert lrs[0] == 0.0 and max(lrs) <= 1e-3
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    assert peak == len(lrs) // 2


def test_no_weight_decay_on_bias_and_layernorm() -> None:
    module, dm = setup_module_and_data(weight_decay=0.1)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=dm)
    decay, no_decay = trainer.optimizers[0].param_groups
    names = {id(p): n for n, p in module.model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all("bias" in names[id(p)] or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert not any("bias" in names[id(p)] for p in decay["params"])


def test_top3_accuracy_on_a_hand_checked_case() -> None:
    module = TextClassificationModule(torch.nn.Identity(), num_labels=5)
    acc3 = module.test_metrics["acc_top3"]
    # true class ranks: 1st, 3rd, 4th, 2nd -> 3 of 4 within the top three
    logits = torch.tensor([[9.0, 1, 2, 3, 4], [1.0, 9, 8, 2, 7], [5.0, 6, 7, 1, 8], [1.0, 2, 9, 8, 0]])
    acc3.update(logits, torch.tensor([0, 4, 0, 3]))
    assert acc3.compute().item() == 0.75


def test_threshold_is_the_f1_best_on_validation() -> None:
    import numpy as np

    from lightning_modules.evaluation import best_threshold

    # thresholds 0.35 -> F1 0.8 (P 2/3, R 1); 0.4 -> 0.5; 0.8 -> 0.667
    assert best_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.35
    assert best_threshold(np.array([0.2, 0.9]), np.array([0, 0])) == 0.5  # no positives: the default


def test_the_analysis_reads_the_last_val_and_test_pass_instead_of_running_them_again() -> None:
    from lightning_modules.evaluation import predict

    module, dm = setup_module_and_data()
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    assert "val" not in (module._kept or {})  # nothing is kept before it is asked for
    module.keep_predictions()
    trainer.validate(module, datamodule=dm, verbose=False)
    trainer.test(module, datamodule=dm, verbose=False)
    for split in ("val", "test"):
        kept, fresh = module.predictions(dm, split), predict(module, getattr(dm, f"{split}_dataloader")())
        assert len(kept[1]) == len(dm.splits[split])
        torch.testing.assert_close(torch.as_tensor(kept[0]), torch.as_tensor(fresh[0]), rtol=0, atol=0)
        assert (kept[1] == fresh[1]).all()
    # a pass that saw part of the split is not used: the analysis runs the whole split
    pl.Trainer(limit_test_batches=1, logger=False, enable_progress_bar=False).test(
        module, datamodule=dm, verbose=False
    )
    assert len(module._kept["test"]) == 1
    assert len(module.predictions(dm, "test")[1]) == len(dm.splits["test"])
