"""Adversarial training, layer-wise lr decay and label smoothing: each acts where the spec says, and
only there."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from experiments.config import experiment_id, validate
from experiments.config.registry import build_datamodule, build_module
from experiments.core.errors import ConfigError
from lightning_modules.adversarial import per_example_norm, word_embeddings
from tests.conftest import tiny_config


def module_and_batch(**groups):
    cfg = validate(tiny_config(**groups))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    pl.seed_everything(0)
    module = build_module(cfg, dm)  # with the training hooks of the knobs cfg turns on
    return module, next(iter(dm._loader("train", shuffle=False)))


def adversarial(module):
    """The FGM / PGD implementation behind the module's adversarial hook."""
    from lightning_modules.knobs.adversarial import AdversarialHook

    (hook,) = [h for h in module.hooks if isinstance(h, AdversarialHook)]
    return hook.adversarial


def objective(module, batch):
    return lambda: module.loss(module.raw_output(batch), batch)


def test_fgm_perturbs_by_epsilon_times_the_embedding_norm_along_the_gradient_and_leaves_the_weights_alone() -> (
    None
):
    module, batch = module_and_batch(adversarial={"method": "fgm", "epsilon": 0.5, "weight": 0.7})
    module.eval()  # no dropout: the clean pass can be recomputed
    emb = word_embeddings(module.model)
    before = emb.weight.detach().clone()
    total, clean = adversarial(module).loss(emb, objective(module, batch))
    delta = adversarial(module).last_delta
    assert all(p.grad is None for p in module.parameters())  # the inner gradient touched no parameter
    # by hand: the clean embeddings e and the gradient g of the clean loss at them
    out = {}
    handle = emb.register_forward_hook(lambda m, a, o: out.setdefault("e", o))
    (g,) = torch.autograd.grad(objective(module, batch)(), out["e"])
    handle.remove()
    size = per_example_norm(out["e"].detach())
    torch.testing.assert_close(per_example_norm(delta), 0.5 * size)
    torch.testing.assert_close(delta, 0.5 * size * g / per_example_norm(g))
    assert torch.equal(emb.weight, before)  # bit-identical: the weights were never written
    # the total is clean + weight * the loss at the perturbation, which ascent made larger
    perturbed = (total - clean) / 0.7
    assert float(perturbed) > float(clean)
    total.backward()
    assert emb.weight.grad is not None and torch.equal(emb.weight, before)


def test_pgd_stays_inside_the_epsilon_ball() -> None:
    module, batch = module_and_batch(adversarial={"method": "pgd", "epsilon": 0.4, "alpha": 0.3, "steps": 4})
    module.eval()
    emb = word_embeddings(module.model)
    before = emb.weight.detach().clone()
    with torch.no_grad():
        size = per_example_norm(emb(batch["input_ids"])).flatten()
    adversarial(module).loss(emb, objective(module, batch))
    norms = per_example_norm(adversarial(module).last_delta).flatten() / size
    assert bool((norms <= 0.4 + 1e-5).all())
    assert bool((norms > 0.4 - 1e-5).any())  # 4 steps of 0.3 reach the ball's edge: the projection acted
    assert torch.equal(emb.weight, before)


def test_adversarial_training_trains_and_reproduces(tmp_path) -> None:
    from experiments.run.reproduce import reproduce
    from experiments.run.train import train

    plain = validate(tiny_config(trainer={"max_epochs": 1}))
    fgm = validate(tiny_config(trainer={"max_epochs": 1}, adversarial={"method": "fgm"}))
    lora_pgd = validate(
        tiny_config(trainer={"max_epochs": 1}, peft={"r": 4}, adversarial={"method": "pgd", "steps": 2})
    )
    assert len({experiment_id(plain), experiment_id(fgm), experiment_id(lora_pgd)}) == 3
    a, b = train(plain), train(fgm)
    assert a["val/loss"] != b["val/loss"]  # the knob changes what is learnt
    assert math.isfinite(train(lora_pgd)["val/loss"])  # frozen embeddings under LoRA: perturbed all the same
    assert reproduce(experiment_id(fgm)).identical


def test_layer_decay_gives_each_layer_the_lr_of_the_one_above_times_the_factor() -> None:
    module, _ = module_and_batch(optim={"lr": 1e-3, "layer_decay": 0.5})
    trainer = pl.Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    cfg = validate(tiny_config(optim={"lr": 1e-3, "layer_decay": 0.5}))
    dm = build_datamodule(cfg)
    trainer.fit(module, datamodule=dm)
    lr_of = {}
    for group in trainer.optimizers[0].param_groups:
        for p in group["params"]:
            lr_of[id(p)] = group["initial_lr"]
    names = {n: lr_of[id(p)] for n, p in module.model.named_parameters()}
    # tiny: 2 encoder layers, so embeddings are at depth 0 and the head at depth 3
    assert names["bert.embeddings.word_embeddings.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert names["bert.embeddings.LayerNorm.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert names["bert.encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-3 * 0.5**2)
    assert names["bert.encoder.layer.1.output.dense.bias"] == pytest.approx(1e-3 * 0.5)
    assert names["classifier.weight"] == pytest.approx(1e-3)
    assert names["bert.pooler.dense.weight"] == pytest.approx(1e-3)
    for group in trainer.optimizers[0].param_groups:  # weight decay still skips biases and norms
        names_in = [n for n, p in module.model.named_parameters() if any(p is q for q in group["params"])]
        assert (group["weight_decay"] == 0.0) == all("bias" in n or "LayerNorm" in n for n in names_in)


def test_label_smoothing_is_the_smoothed_cross_entropy_by_hand() -> None:
    module, batch = module_and_batch(optim={"label_smoothing": 0.2})
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    labels = torch.tensor([0, 1])
    got = float(module.hooked_loss(logits, {"labels": labels}, "train"))
    hand = 0.0
    for z, y in zip(logits.tolist(), labels.tolist()):
        logp = [v - math.log(sum(math.exp(u) for u in z)) for v in z]
        hand += -(0.8 * logp[y] + 0.2 * sum(logp) / 2)
    assert got == pytest.approx(hand / 2, rel=1e-6)


def test_the_knobs_are_refused_where_a_task_cannot_use_them() -> None:
    with pytest.raises(ConfigError) as err:
        validate(
            {
                "data": {"dataset": "open_bandit"},
                "adversarial": {"method": "fgm"},
                "optim": {"layer_decay": 0.8, "label_smoothing": 0.1},
            }
        )
    text = str(err.value)
    assert "adversarial.method: task 'click_through' has no text encoder" in text
    assert "optim.layer_decay: task 'click_through' has no text encoder" in text
    assert "optim.label_smoothing: task 'click_through' has no class logits" in text
    with pytest.raises(ConfigError) as err:
        validate(
            {
                "data": {"dataset": "pc_prices"},
                "adversarial": {"method": "pgd"},
                "optim": {"label_smoothing": 0.1},
            }
        )
    assert "optim.label_smoothing: task 'price_regression'" in str(err.value)
    assert "adversarial" not in str(err.value)  # price regression has a text encoder to perturb


def test_rdrop_adds_alpha_times_the_symmetric_kl_of_a_second_dropout_pass() -> None:
    from lightning_modules.knobs.rdrop import RDropHook

    module, batch = module_and_batch(rdrop={"alpha": 0.5})
    (hook,) = [h for h in module.hooks if isinstance(h, RDropHook)]
    first = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    second = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    module.raw_output = lambda b: second  # the second pass, fixed for the hand computation
    module.train()
    got = float(hook.loss(module, first, batch, torch.tensor(1.0), "train"))
    kl = 0.0
    for a, b in zip(first.tolist(), second.tolist()):
        pa = [math.exp(v) / sum(math.exp(u) for u in a) for v in a]
        pb = [math.exp(v) / sum(math.exp(u) for u in b) for v in b]
        kl += sum(p * math.log(p / q) for p, q in zip(pa, pb)) + sum(
            q * math.log(q / p) for p, q in zip(pa, pb)
        )
    assert got == pytest.approx(1.0 + 0.5 * kl / 2 / 2, rel=1e-6)
    assert float(hook.loss(module, first, batch, torch.tensor(1.0), "val")) == 1.0  # train only


def test_rdrop_is_refused_without_class_logits_and_keeps_ids_when_off() -> None:
    with pytest.raises(ConfigError, match="rdrop.alpha: task 'price_regression' has no class logits"):
        validate({"data": {"dataset": "pc_prices"}, "rdrop": {"alpha": 1.0}})
    off = tiny_config()
    assert experiment_id(validate({**off, "rdrop": {"alpha": 0.0}})) == experiment_id(validate(off))
