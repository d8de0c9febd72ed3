"""Zero-shot prompting of an instruct decoder, the question every team asks first: does fine-tuning
beat just asking the model?

No training: each example goes into a prompt that names the labels (through the model's own chat
template), and the answer is the label whose tokens are most likely after it, by their mean
log-probability (so a label of several tokens is not penalised for its length). Scored on the run's
own val and test splits, with the same metrics as the TF-IDF baseline, so the three sit side by side.
"""

from __future__ import annotations

from typing import Any

BATCH = 16


def prompt(tokenizer: Any, text: str, labels: list[str]) -> str:
    """The prompt up to where the answer starts."""
    names = ", ".join(labels)
    question = f"Classify this review as one of: {names}.\n\nReview: {text}\n\nAnswer with one of: {names}."
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return question + "\nAnswer:"


def label_scores(model: Any, tokenizer: Any, texts: list[str], labels: list[str], max_length: int) -> Any:
    """(examples, labels) mean log-probability of each label's tokens after each example's prompt."""
    import torch

    spoken = [label.replace("_", " ") for label in labels]
    answers = [
        tokenizer(" " + s if not getattr(tokenizer, "chat_template", None) else s, add_special_tokens=False)[
            "input_ids"
        ]
        for s in spoken
    ]
    rows = []  # (prompt ids, answer ids)
    for text in texts:
        ids = tokenizer(prompt(tokenizer, text[: 8 * max_length], spoken), add_special_tokens=False)[
            "input_ids"
        ]
        rows.extend((ids[-(4 * max_length) :], ans) for ans in answers)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores = []
    with torch.inference_mode():
        for i in range(0, len(rows), BATCH):
            chunk = rows[i : i + BATCH]
            seqs = [p + a for p, a in chunk]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, s in enumerate(seqs):
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            for r, (p, a) in enumerate(chunk):
                positions = torch.arange(len(p) - 1, len(p) + len(a) - 1)
                scores.append(float(logp[r, positions, torch.tensor(a)].mean()))
    return torch.tensor(scores).view(len(texts), len(labels))


def fit(dm: Any, cfg: Any) -> dict[str, Any]:
    """The zero-shot answers of `cfg.model.backbone` on the val and test splits, scored."""
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lightning_modules.backbones import resolve

    folder = resolve(cfg.model.backbone)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    p = dm.prepared()
    labels = list(p.label_names)
    metrics = {}
    for s in ("val", "test"):
        pred = label_scores(model, tokenizer, p.texts[s], labels, cfg.data.max_length).argmax(1).tolist()
        truth = [labels.index(y) for y in p.labels[s]]
        metrics[f"{s}/f1"] = float(f1_score(truth, pred, average="macro"))
        metrics[f"{s}/acc"] = float(accuracy_score(truth, pred))
    return {
        "name": f"zero-shot {cfg.model.backbone} (prompted, no training)",
        "metrics": metrics,
        "settings": {
            "labels": [label.replace("_", " ") for label in labels],
            "score": "mean label log-probability",
        },
    }
