"""The `tiny` backbone's tokenizer: a pure function of the training texts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from experiments.config import validate
from lightning_modules.backbones import save_tiny_backbone, tiny_vocab
from tests.conftest import tiny_config

TEXTS = ["Great kettle, really lovely", "great lamp, really awful", "很好的书", "不好的书", "lovely lamp"]


def test_the_vocabulary_is_deterministic_and_ordered() -> None:
    vocab = tiny_vocab(TEXTS, 200)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert vocab == tiny_vocab(list(TEXTS), 200)
    assert "great" in vocab and "lovely" in vocab and "really" in vocab  # words seen twice
    assert "kettle" not in vocab and "##e" in vocab and "好" in vocab  # rare word: pieces only
    assert len(tiny_vocab(TEXTS, 20)) == 20


def test_saved_twice_gives_identical_files_that_load_with_from_pretrained(tmp_path: Path) -> None:
    model = validate(tiny_config()).model
    for d in ("a", "b"):
        save_tiny_backbone(TEXTS * 3, model, tmp_path / d)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_bytes()
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "a"))
    pieces = tok.convert_ids_to_tokens(tok("great latte 很好")["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and "great" in pieces
    assert "l" in pieces and "##e" in pieces  # an unseen word falls back to characters
    assert "很" in pieces and "好" in pieces


@pytest.mark.download
def test_a_pretrained_backbone_keeps_only_its_bottom_layers_and_saves_as_such(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from lightning_modules.backbones import build_model, encoder_layers

    full = build_model(validate(tiny_config(model={"backbone": "minilm"})), 2, None, ["neg", "pos"])
    cfg = validate(tiny_config(model={"backbone": "minilm", "layers": 2}))
    student = build_model(cfg, 2, None, ["neg", "pos"])
    assert len(encoder_layers(full)) == 6 and len(encoder_layers(student)) == 2
    # the kept layers are the pretrained bottom ones, not fresh ones
    for a, b in zip(encoder_layers(full)[:2], encoder_layers(student)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    student.save_pretrained(tmp_path / "student")
    back = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "student"))
    assert back.config.num_hidden_layers == 2 and len(back.bert.encoder.layer) == 2
