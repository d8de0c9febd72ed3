"""Decoder LLMs as text classifiers, on tiny random Llama, Qwen2 and Gemma 3 configs built here (and
Mistral, Qwen3, GPT-2 and XLM-R ones; no download): they train through the same `train(cfg)`, pool
their last real token whichever side pads, get LoRA on peft's per-architecture targets by default,
and export to a folder that plain transformers loads with the run's own outputs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from experiments.config import validate
from experiments.config.registry import build_datamodule, build_module
from tests.conftest import FIXTURES, tiny_config

FAMILIES = ("llama", "qwen2", "gemma3_text")


def tiny_decoder(root: Path, family: str, pad: bool = True) -> Path:
    """A 2-layer random decoder of `family` with a small byte-level BPE tokenizer of the fixture's
    reviews, saved as a `from_pretrained` folder (`pad=False`: the tokenizer has no pad token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    folder = root / f"{family}{'' if pad else '-nopad'}"
    if (folder / "config.json").is_file():
        return folder
    import csv

    lines = (FIXTURES / "reviews.csv").read_text(encoding="utf-8", errors="replace").splitlines()
    texts = [row["text"] for row in csv.DictReader(lines)]  # the fixture damages one row's bytes
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<eos>", "<bos>"] + (["<pad>"] if pad else [])
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", bos_token="<bos>", pad_token="<pad>" if pad else None
    )
    fast.save_pretrained(folder)
    shape = dict(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
    )
    if family == "gemma3_text":
        shape.update(head_dim=8, sliding_window=32)
    torch.manual_seed(0)
    if family == "xlm-roberta":  # the multilingual encoder family: saved with its masked-LM head
        from transformers import AutoModelForMaskedLM as AutoModelForCausalLM  # noqa: N814
    AutoModelForCausalLM.from_config(AutoConfig.for_model(family, **shape)).save_pretrained(folder)
    return folder


def decoder_config(folder: Path, **groups) -> dict:
    groups["model"] = {"backbone": str(folder), **groups.get("model", {})}
    return tiny_config(optim={"lr": 3e-3, "warmup": 0.0}, **groups)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_decoder_trains_with_lora_on_its_own_attention_projections(family: str, tmp_path: Path) -> None:
    from experiments.run.train import train

    folder = tiny_decoder(tmp_path, family)
    cfg = validate(decoder_config(folder, peft={"r": 4}, trainer={"max_epochs": 1}))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    module = build_module(cfg, dm)
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "score" in n for n in trainable), sorted(trainable)
    assert any(".q_proj.lora_A" in n for n in trainable) and any(".v_proj.lora_A" in n for n in trainable)
    metrics = train(cfg, tmp_path / "runs")
    assert math.isfinite(metrics["val/loss"]) and 0 <= metrics["test/f1"] <= 1


@pytest.mark.parametrize("family", ["mistral", "qwen3", "gpt2", "xlm-roberta"])
def test_every_common_family_trains_with_lora_on_peft_s_default_targets(family: str, tmp_path: Path) -> None:
    """Mistral, Qwen3, GPT-2 and XLM-R folders work as Llama's do: peft picks the architecture's
    attention projections (GPT-2's fused `c_attn`, XLM-R's `query`/`value`) and the head trains."""
    from experiments.run.train import train

    folder = tiny_decoder(tmp_path, family)
    cfg = validate(decoder_config(folder, peft={"r": 4}, trainer={"max_epochs": 1}))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    trainable = {n for n, p in build_module(cfg, dm).model.named_parameters() if p.requires_grad}
    expected = {"gpt2": ".c_attn.lora_A", "xlm-roberta": ".query.lora_A"}.get(family, ".q_proj.lora_A")
    assert any(expected in n for n in trainable), sorted(trainable)
    assert all("lora_" in n or "score" in n or "classifier" in n for n in trainable), sorted(trainable)
    metrics = train(cfg, tmp_path / "runs")
    assert math.isfinite(metrics["val/loss"]) and 0 <= metrics["test/f1"] <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_a_decoder_pools_its_last_real_token_whichever_side_pads(family: str, tmp_path: Path) -> None:
    folder = tiny_decoder(tmp_path, family, pad=False)  # the tokenizer pads with its EOS token
    cfg = validate(decoder_config(folder))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    assert dm.tokenizer.pad_token == dm.tokenizer.eos_token
    model = build_module(cfg, dm).model.eval()
    assert model.config.pad_token_id == dm.tokenizer.pad_token_id
    texts = ["lovely soft dress", "the zipper broke after one wash and the seams came apart"]
    alone = [model(**dm.tokenizer([t], return_tensors="pt")).logits[0] for t in texts]
    for side in ("right", "left"):
        dm.tokenizer.padding_side = side
        batch = dm.tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(**batch).logits
        torch.testing.assert_close(logits, torch.stack(alone).detach(), rtol=1e-4, atol=1e-5)


def test_all_linear_and_explicit_targets_override_the_architecture_default(tmp_path: Path) -> None:
    folder = tiny_decoder(tmp_path, "llama")
    for targets, expect in (
        (["all-linear"], {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
        (["o_proj"], {"o_proj"}),
    ):
        cfg = validate(decoder_config(folder, peft={"r": 2, "target_modules": targets}))
        dm = build_datamodule(cfg)
        dm.setup("fit")
        model = build_module(cfg, dm).model
        adapted = {
            n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n
        }
        assert adapted == expect, adapted


def test_dora_rslora_and_gradient_checkpointing_train_a_decoder(tmp_path: Path) -> None:
    from experiments.run.train import train

    folder = tiny_decoder(tmp_path, "qwen2")
    cfg = validate(
        decoder_config(
            folder,
            peft={"r": 4, "use_dora": True, "use_rslora": True},
            model={"gradient_checkpointing": True},
            trainer={"max_epochs": 1},
        )
    )
    dm = build_datamodule(cfg)
    dm.setup("fit")
    model = build_module(cfg, dm).model
    assert any("lora_magnitude_vector" in n for n, _ in model.named_parameters())  # DoRA's magnitudes
    assert model.base_model.model.is_gradient_checkpointing
    assert math.isfinite(train(cfg, tmp_path / "runs")["val/loss"])


def test_quantised_base_weights_are_refused_on_a_cpu_with_the_reason(tmp_path: Path) -> None:
    from experiments.core.errors import ConfigError

    folder = tiny_decoder(tmp_path, "llama")
    with pytest.raises(ConfigError) as err:
        validate(
            decoder_config(
                folder,
                peft={"r": 4},
                model={"quantize": "nf4"},
                trainer={"accelerator": "cpu"},
            )
        )
    assert "bitsandbytes' CUDA kernels" in str(err.value) and "peft.r" in str(err.value)


def test_bf16_mixed_precision_trains_on_the_cpu_and_is_recorded(tmp_path: Path) -> None:
    import json

    from experiments.config import experiment_id
    from experiments.run.train import train

    cfg = validate(tiny_config(trainer={"max_epochs": 1, "precision": "bf16-mixed", "accelerator": "cpu"}))
    assert math.isfinite(train(cfg, tmp_path / "runs")["val/loss"])
    record = tmp_path / "runs" / experiment_id(cfg)
    assert "bf16-mixed" in (record / "config.yaml").read_text()
    assert json.loads((record / "manifest.json").read_text())["status"] == "completed"


def test_zero_shot_scores_each_label_by_its_mean_log_probability_after_the_prompt(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from experiments.run.baseline import prompts_well, zero_shot
    from lightning_modules.text_classification.zero_shot import label_scores, prompt

    folder = tiny_decoder(tmp_path, "llama")
    assert not prompts_well(str(folder))  # no chat template: not an instruct model
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = "{% for m in messages %}<bos>{{ m['content'] }}<eos>{% endfor %}"
    tok.save_pretrained(folder)
    assert prompts_well(str(folder))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    scores = label_scores(model, tok, ["soft fabric"], ["positive", "not_so_good"], max_length=32)
    # by hand: the prompt, then each label's tokens, each scored after the ones before it
    ids = tok(prompt(tok, "soft fabric", ["positive", "not so good"]), add_special_tokens=False)["input_ids"]
    for j, label in enumerate(["positive", "not so good"]):
        ans = tok(label, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids + ans])).logits[0], -1)
        hand = sum(float(logp[len(ids) - 1 + k, a]) for k, a in enumerate(ans)) / len(ans)
        assert float(scores[0, j]) == pytest.approx(hand, abs=1e-5)
    result = zero_shot(validate(decoder_config(folder)))
    assert (
        set(result["metrics"]) == {"val/f1", "val/acc", "test/f1", "test/acc"}
        and "zero-shot" in result["name"]
    )
