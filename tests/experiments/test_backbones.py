"""The `tiny` backbone's tokenizer: a pure function of the training texts."""

from __future__ import annotations

from pathlib import Path

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
