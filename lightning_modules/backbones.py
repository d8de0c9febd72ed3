"""Backbones: a catalogue name (`lightning_modules.weights`: MiniLM, e5-small, SmolLM2, Gemma 3), any
`from_pretrained` id or folder, or `tiny`; encoders (BERT-like) and decoders (Llama, Qwen2/3, Gemma,
Mistral, GPT-2) alike, as sequence classifiers.

A decoder classifies from its last non-padding token (Hugging Face's `*ForSequenceClassification`
finds it through `pad_token_id`, whichever side pads): a tokenizer without a pad token pads with its
end-of-sequence token, and the model's config gets that id. LoRA targets are peft's defaults for the
architecture unless `peft.target_modules` names others.

`tiny` is a small randomly initialised BERT whose WordPiece tokenizer is trained on the training split
(for Chinese data and fast tests); it is saved with `save_pretrained` and loaded back through the same
`from_pretrained` path as every other backbone. Weights load from safetensors; remote code is refused
unless `model.trust_remote_code` is set.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from experiments.core import assets, token_cache
from experiments.core.errors import ConfigError, EcomlabError
from lightning_modules.knobs.model import ModelConfig
from lightning_modules.knobs.peft import PeftConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Dropout knobs -> the config attribute names architectures use for them (first match wins).
DROPOUT_ATTRS = {
    "hidden_dropout": ("hidden_dropout_prob", "hidden_dropout", "dropout"),
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout"),
    "classifier_dropout": ("classifier_dropout", "seq_classif_dropout", "classifier_dropout_prob"),
}


def resolve(backbone: str) -> str:
    """Backbone name -> what `from_pretrained` gets (a folder or a hub id). `tiny` is built elsewhere."""
    from lightning_modules import weights

    if backbone in weights.CATALOGUE:
        return str(weights.folder(backbone))
    p = Path(backbone).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ConfigError([f"model.backbone: {p} is a file; give the folder that holds config.json"])
        return str(p)
    return backbone  # a hub id; from_pretrained reports if it cannot be reached


def _tiny_dir(prep_key: str, m: ModelConfig) -> Path:
    from experiments.core.fingerprints import fingerprint

    return assets.cache_root() / "tiny" / fingerprint("tiny-vocab-v2", prep_key, m.tiny.model_dump())[:16]


def tiny_vocab(texts: list[str], vocab_size: int) -> list[str]:
    """A WordPiece vocabulary built deterministically from the training texts.

    The tokenizers library's trainer breaks ties between equally frequent merges in hash order, so
    two trainings on the same texts give different vocabularies (and different results). This one is
    a pure function of the texts: special tokens, the characters (most frequent first), their `##`
    continuations, then whole words seen at least twice, by frequency and then alphabetically.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    chars: Counter[str] = Counter()
    inner: Counter[str] = Counter()
    for w, n in words.items():
        chars[w[0]] += n
        for c in w[1:]:
            inner[c] += n
    by_count = lambda c: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))  # noqa: E731
    vocab = list(SPECIAL_TOKENS)
    seen = set(vocab)
    for token in (
        [ch for ch, _ in by_count(chars + inner)]
        + [f"##{ch}" for ch, _ in by_count(inner)]
        + [w for w, n in by_count(words) if n >= 2 and len(w) > 1]
    ):
        if len(vocab) >= vocab_size:
            break
        if token not in seen:
            seen.add(token)
            vocab.append(token)
    return vocab


def save_tiny_backbone(texts: list[str], m: ModelConfig, out: Path) -> None:
    """Build the WordPiece tokenizer from `texts`; save it and the matching BertConfig to `out`."""
    from tokenizers import BertWordPieceTokenizer, Tokenizer
    from transformers import BertConfig, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(tiny_vocab(texts, m.tiny.vocab_size))}
    tk = BertWordPieceTokenizer(vocab, clean_text=True, handle_chinese_chars=True, lowercase=True)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tk.to_str()),
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    fast.save_pretrained(out)
    BertConfig(
        vocab_size=len(fast),
        hidden_size=m.tiny.hidden,
        num_hidden_layers=m.tiny.layers,
        num_attention_heads=m.tiny.heads,
        intermediate_size=4 * m.tiny.hidden,
        max_position_embeddings=512,
        pad_token_id=fast.pad_token_id,
    ).save_pretrained(out)


def _build_tiny(folder: Path, texts: list[str], m: ModelConfig) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tiny-"))
    try:
        save_tiny_backbone(texts, m, tmp)
        tmp.rename(folder)
    except OSError:
        if not (folder / "config.json").is_file():  # not just another process winning
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tokenizer_loader(m: ModelConfig) -> Callable[[str, Callable[[], list[str]]], Any]:
    """The DataModule calls this with the prepared-data key and a lazy view of the train texts."""
    from transformers import AutoTokenizer

    def load(prep_key: str, train_texts: Callable[[], list[str]]) -> Any:
        if m.backbone == "tiny":
            folder = _tiny_dir(prep_key, m)
            if not (folder / "config.json").is_file():
                with token_cache.building(f"tiny-{folder.name}"):  # built once on a machine
                    if not (folder / "config.json").is_file():
                        _build_tiny(folder, train_texts(), m)
            return AutoTokenizer.from_pretrained(str(folder))
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                resolve(m.backbone), trust_remote_code=m.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            raise EcomlabError(
                f"model.backbone: cannot load a tokenizer from {m.backbone!r}: {str(exc).splitlines()[0]}"
            ) from None
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:  # most decoders: pad with EOS
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    return load


def build_model(cfg: Any, num_labels: int, tokenizer: Any, label_names: list[str]) -> nn.Module:
    """A sequence-classification model with the config's dropout, freezing and LoRA applied.

    The caller seeds torch first: the head (and the whole `tiny` model) is initialised from that seed.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    m = cfg.model
    id2label = dict(enumerate(label_names))
    label2id = {v: k for k, v in id2label.items()}
    if m.backbone == "tiny":
        # the folder the tiny tokenizer was saved to also holds its config.json (see tokenizer_loader)
        source = None
        hf_cfg: Any = AutoConfig.from_pretrained(tokenizer.name_or_path)
    else:
        source = resolve(m.backbone)
        try:
            hf_cfg = AutoConfig.from_pretrained(source, trust_remote_code=m.trust_remote_code)
        except (OSError, ValueError) as exc:
            raise EcomlabError(
                f"model.backbone: cannot load {m.backbone!r} with from_pretrained: {str(exc).splitlines()[0]}"
            ) from None
    hf_cfg.num_labels = num_labels
    hf_cfg.id2label, hf_cfg.label2id = id2label, label2id
    if getattr(hf_cfg, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        hf_cfg.pad_token_id = tokenizer.pad_token_id  # a decoder pools its last token not equal to it
    for knob, names in DROPOUT_ATTRS.items():
        for name in names:
            if hasattr(hf_cfg, name):
                setattr(hf_cfg, name, getattr(m, knob))
                break
    if source is None:
        model = AutoModelForSequenceClassification.from_config(hf_cfg)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            config=hf_cfg,
            trust_remote_code=m.trust_remote_code,
            use_safetensors=None,
            **quantised_loading(m.quantize),
        )
    # from_pretrained returns eval mode and Lightning keeps module modes as it finds them: without
    # this, dropout would silently stay off during training.
    model.train()
    if m.layers is not None:
        keep_bottom_layers(model, m.layers)
    if cfg.prune.ffn:
        prune_ffn(model, cfg.prune.ffn)
    if cfg.prune.heads:
        prune_heads(model, cfg.prune.heads)
    if m.freeze_layers:
        freeze_bottom(model, m.freeze_layers)
    if m.quantize != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=m.gradient_checkpointing)
    elif m.gradient_checkpointing:
        # non-reentrant: gradients reach LoRA adapters and frozen embeddings' outputs alike
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.peft.r > 0:
        model = apply_lora(model, cfg.peft)
    return model


def quantised_loading(kind: str) -> dict[str, Any]:
    """`from_pretrained` arguments that load the base weights in nf4 or int8 (bitsandbytes, CUDA)."""
    if kind == "none":
        return {}
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            [
                f"model.quantize: {kind} base weights load through bitsandbytes' CUDA kernels and this machine has "
                "no CUDA GPU: on a CPU train LoRA (peft.r) on full-precision weights, with "
                "model.gradient_checkpointing and a shorter data.max_length to save memory; or run it on a GPU"
            ]
        )
    try:
        from transformers import BitsAndBytesConfig
    except ImportError:  # pragma: no cover - transformers always has it
        raise
    if kind == "nf4":
        bnb = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    else:
        bnb = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": bnb, "device_map": {"": torch.cuda.current_device()}}


DEFAULT_TARGETS = ["query", "value"]  # PeftConfig's default: BERT's names, and peft's default for BERT


def lora_targets(model: nn.Module, wanted: list[str]) -> list[str] | str | None:
    """What peft adapts: the config's `peft.target_modules` (`all-linear` is peft's own spelling for
    every linear layer but the head); at its default, peft's own per-architecture defaults (None)
    when the model has no module of those names (a decoder's are `q_proj`/`v_proj`)."""
    if wanted == ["all-linear"]:
        return "all-linear"
    if wanted != DEFAULT_TARGETS:
        return list(wanted)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return list(wanted) if set(wanted) <= names else None


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of the backbone (the longest ModuleList under `base_model`)."""
    base = getattr(model, "base_model", model)
    lists = [mod for mod in base.modules() if isinstance(mod, nn.ModuleList)]
    if not lists:
        raise ConfigError([f"model.freeze_layers: no encoder layers found in {type(model).__name__}"])
    return max(lists, key=len)


def prune_ffn(model: nn.Module, share: float) -> None:
    """Remove `share` of every encoder layer's FFN neurons, those with the lowest L1 importance (the
    L1 norm of a neuron's input row plus its output column), so the matrices really shrink. The same
    count goes in every layer, so `intermediate_size` in the saved config describes the model and
    `from_pretrained` loads it. Done before fine-tuning: every epoch trains the smaller network."""
    import torch
    from transformers.pytorch_utils import prune_linear_layer

    keep = None
    for layer in encoder_layers(model):
        up = getattr(getattr(layer, "intermediate", None), "dense", None)
        down = getattr(getattr(layer, "output", None), "dense", None)
        if not isinstance(up, nn.Linear) or not isinstance(down, nn.Linear):
            raise ConfigError(
                [
                    f"prune.ffn: {type(layer).__name__} has no BERT-style FFN "
                    "(intermediate.dense / output.dense) to prune"
                ]
            )
        keep = max(1, round(up.out_features * (1 - share)))
        with torch.no_grad():
            score = up.weight.abs().sum(dim=1) + down.weight.abs().sum(dim=0)
        index = torch.topk(score, keep).indices.sort().values
        layer.intermediate.dense = prune_linear_layer(up, index, dim=0)
        layer.output.dense = prune_linear_layer(down, index, dim=1)
    model.config.intermediate_size = keep


def keep_bottom_layers(model: nn.Module, n: int) -> None:
    """Drop every encoder layer above the bottom `n` (a shallower student initialised from the
    pretrained weights); `num_hidden_layers` in the saved config says so, and `from_pretrained` loads it."""
    layers = encoder_layers(model)
    if n > len(layers):
        raise ConfigError([f"model.layers: the backbone has {len(layers)} layers (got {n})"])
    del layers[n:]
    model.config.num_hidden_layers = n


def _attention(layer: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(self-attention with query/key/value, its output projection) of a BERT-style layer."""
    attn = getattr(layer, "attention", None)
    heads, out = getattr(attn, "self", None), getattr(attn, "output", None)
    if (
        not all(isinstance(getattr(heads, n, None), nn.Linear) for n in ("query", "key", "value"))
        or not isinstance(getattr(out, "dense", None), nn.Linear)
        or not hasattr(heads, "attention_head_size")
    ):
        raise ConfigError(
            [
                f"prune.heads: {type(layer).__name__} has no BERT-style attention "
                "(attention.self.query/key/value, attention.output.dense) to prune"
            ]
        )
    return heads, out


def _slice_heads(layer: nn.Module, heads: list[int]) -> None:
    """Keep only `heads` (their query/key/value rows and output-projection columns) in `layer`."""
    import torch
    from transformers.pytorch_utils import prune_linear_layer

    attn, out = _attention(layer)
    d = attn.attention_head_size
    index = torch.cat([torch.arange(h * d, (h + 1) * d) for h in heads])
    for name in ("query", "key", "value"):
        setattr(attn, name, prune_linear_layer(getattr(attn, name), index, dim=0))
    out.dense = prune_linear_layer(out.dense, index, dim=1)
    attn.num_attention_heads = len(heads)
    attn.all_head_size = len(heads) * d


def prune_heads(model: nn.Module, share: float) -> None:
    """Remove `share` of every encoder layer's attention heads, those with the lowest L1 importance
    (the L1 norm of a head's query, key and value rows plus its output-projection columns), so the
    projections really shrink; the same count in every layer. Done before fine-tuning.

    transformers 5 has no `prune_heads` and a BERT config cannot describe fewer heads of the same
    size, so `ecomlab export` writes the pruned heads back as zeros (a plain `from_pretrained` folder
    with identical outputs) and `load_model` slices them off again (see `pad_heads`/`keep_heads`)."""
    import torch

    for layer in encoder_layers(model):
        attn, out = _attention(layer)
        n, d = attn.num_attention_heads, attn.attention_head_size
        keep = max(1, round(n * (1 - share)))
        with torch.no_grad():
            rows = sum(getattr(attn, p).weight.abs().sum(dim=1) for p in ("query", "key", "value"))
            score = (rows + out.dense.weight.abs().sum(dim=0)).view(n, d).sum(dim=1)
        _slice_heads(layer, torch.topk(score, keep).indices.sort().values.tolist())


def head_counts(model: nn.Module) -> list[int]:
    """Attention heads left in each encoder layer."""
    return [_attention(layer)[0].num_attention_heads for layer in encoder_layers(model)]


def _zero_padded(
    old: nn.Linear, out_features: int | None = None, in_features: int | None = None
) -> nn.Linear:
    """`old` grown to the given shape with zeros in the new rows/columns (and bias entries)."""
    import torch

    new = nn.Linear(
        in_features or old.in_features, out_features or old.out_features, bias=old.bias is not None
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[: old.out_features, : old.in_features] = old.weight
        if old.bias is not None:
            new.bias.zero_()
            new.bias[: old.out_features] = old.bias
    return new


def pad_heads(model: nn.Module) -> None:
    """Grow every head-pruned layer back to the config's head count with all-zero heads (after the
    kept ones), so the weights match what the config describes; a zero head adds exactly nothing."""
    n = model.config.num_attention_heads
    for layer in encoder_layers(model):
        attn, out = _attention(layer)
        if attn.num_attention_heads == n:
            continue
        width = n * attn.attention_head_size
        for name in ("query", "key", "value"):
            setattr(attn, name, _zero_padded(getattr(attn, name), out_features=width))
        out.dense = _zero_padded(out.dense, in_features=width)
        attn.num_attention_heads, attn.all_head_size = n, width


def keep_heads(model: nn.Module, counts: list[int]) -> None:
    """Slice a `pad_heads` model back to its first `counts[i]` heads per layer."""
    for layer, k in zip(encoder_layers(model), counts, strict=True):
        if k < _attention(layer)[0].num_attention_heads:
            _slice_heads(layer, list(range(k)))


def layer_depths(model: nn.Module) -> tuple[dict[str, int], int]:
    """({parameter name: depth}, top) for layer-wise lr decay: the embeddings (the module that holds
    the word embeddings) at 0, encoder layer i at i + 1; parameters not named (pooler, classifier, a
    task's head) are at top = layers + 1."""
    from lightning_modules.adversarial import word_embeddings

    layers = encoder_layers(model)
    names = {id(mod): name for name, mod in model.named_modules()}
    emb = names[id(word_embeddings(model))]
    # an encoder's embeddings module ("bert.embeddings": word, position and type embeddings, their
    # norm) sits beside its layers; a decoder's word embeddings ("model.embed_tokens") are alone
    parent = emb.rpartition(".")[0]
    emb_prefix = emb if names[id(layers)].startswith(parent + ".") else parent
    depth: dict[str, int] = {}
    for i, layer in enumerate(layers):
        for pname, _ in layer.named_parameters():
            depth[f"{names[id(layer)]}.{pname}"] = i + 1
    for name, _ in model.named_parameters():
        if name.startswith(emb_prefix + "."):
            depth[name] = 0
    return depth, len(layers) + 1


def freeze_bottom(model: nn.Module, n: int) -> None:
    layers = encoder_layers(model)
    if n > len(layers):
        raise ConfigError([f"model.freeze_layers: the backbone has {len(layers)} layers (got {n})"])
    base = getattr(model, "base_model", model)
    emb = getattr(base, "embeddings", None)  # an encoder's embeddings; a decoder's word embeddings
    (emb if emb is not None else model.get_input_embeddings()).requires_grad_(False)
    for layer in layers[:n]:
        layer.requires_grad_(False)


def apply_lora(model: nn.Module, p: PeftConfig) -> nn.Module:
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=p.r,
        lora_alpha=p.alpha,
        lora_dropout=p.dropout,
        target_modules=lora_targets(model, list(p.target_modules)),
        use_dora=p.use_dora,
        use_rslora=p.use_rslora,
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError([f"peft.target_modules: {str(exc).splitlines()[0]}"]) from None


def prunable_linears(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, "weight") for every Linear inside the encoder blocks, LoRA adapters excluded."""
    out = []
    for layer in encoder_layers(model):
        for name, mod in layer.named_modules():
            if isinstance(mod, nn.Linear) and "lora_" not in name:
                out.append((mod, "weight"))
    return out


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
