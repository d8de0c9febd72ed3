"""The cheap baseline beside every study and run: was fine-tuning worth it?

Each task declares its baseline once (`TaskSpec.baseline`: TF-IDF + logistic regression for text
classification, ridge on TF-IDF + features for prices, logistic regression on one-hot features for
click-through). `compute(cfg)` fits it on exactly the split the config trains on (same cleaning,
subsample, split seed and fold; never augmented), once per data fingerprint and split: the result
is cached in the token cache, keyed like it. A sweep stores it on the study (`baseline` user
attribute), so `study show`, `report`, `compare` and the W&B study run read it on any machine
without fitting again.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from experiments.core import fingerprints, token_cache

BASELINE_VERSION = "baseline-v1"


def cache_key(cfg: Any, dm: Any) -> str:
    files = fingerprints.files_fingerprint(dm.source_files())
    opts = cfg.data.model_dump(mode="json", exclude=set(fingerprints.NOT_SPLIT_SHAPING))
    return fingerprints.fingerprint(BASELINE_VERSION, cfg.task, files, opts, dm.fold)


def compute(cfg: Any, console: Console | None = None) -> dict[str, Any] | None:
    """The task's baseline on `cfg`'s split ({"name", "metrics", "settings", "trivial", "cache_hit"}),
    or None for a task that declares none."""
    from experiments.config.registry import TASKS, build_datamodule

    fit = TASKS[cfg.task].baseline_fit()
    if fit is None:
        return None
    dm = build_datamodule(cfg, console=Console(quiet=True), augment=False)
    return _fit_once(fit, dm, cfg, cache_key(cfg, dm), "baseline", "fitted", console)


def _fit_once(
    fit: Any, dm: Any, cfg: Any, key: str, kind: str, verb: str, console: Console | None
) -> dict[str, Any]:
    """`fit(dm, cfg)` timed and cached under `key` (as `kind` in the token cache's metadata), or the
    cached result; says so on `console` when it fitted."""
    import time

    cached = token_cache.load(key)
    if cached is not None:
        return {**cached.meta[kind], "cache_hit": True}
    start = time.time()
    result = fit(dm, cfg)
    result["fit_s"] = round(time.time() - start, 3)
    token_cache.save(key, {}, {kind: result})
    if console is not None:
        label = kind.replace("_", "-")
        console.print(f"{label}: {result['name']} {verb} in {result['fit_s']:.1f} s (cached for this split)")
    return {**result, "cache_hit": False}


ZERO_SHOT_VERSION = "zero-shot-v1"


def prompts_well(backbone: str) -> bool:
    """Whether a backbone is an instruct decoder worth prompting: a catalogue one marked so, or a
    folder whose tokenizer has a chat template."""
    import json
    from pathlib import Path

    from lightning_modules import weights

    if backbone in weights.CATALOGUE:
        return weights.CATALOGUE[backbone].instruct
    folder = Path(backbone).expanduser()
    if (folder / "chat_template.jinja").is_file():  # where transformers 5 saves it
        return True
    try:
        return bool(
            json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
        )
    except (OSError, ValueError):
        return False


def zero_shot(cfg: Any, console: Console | None = None) -> dict[str, Any] | None:
    """The backbone prompted with no training on `cfg`'s split (the baseline's shape), or None when
    the task has no zero-shot scorer or the backbone is not an instruct decoder. Cached like the
    baseline, per backbone."""
    from experiments.config.registry import TASKS, build_datamodule

    fit = TASKS[cfg.task].zero_shot_fit()
    if fit is None or not prompts_well(cfg.model.backbone):
        return None
    dm = build_datamodule(cfg, console=Console(quiet=True), augment=False)
    key = fingerprints.fingerprint(
        ZERO_SHOT_VERSION, cache_key(cfg, dm), cfg.model.backbone, cfg.data.max_length
    )
    return _fit_once(fit, dm, cfg, key, "zero_shot", "scored", console)


def versus(value: float | None, baseline: dict[str, Any] | None, metric: str, goal: str) -> str | None:
    """ "val/f1 0.8900 vs baseline 0.8700 (TF-IDF + logistic regression): +0.0200, better", or None
    when the baseline has no such metric."""
    if value is None or not baseline or metric not in baseline.get("metrics", {}):
        return None
    base = baseline["metrics"][metric]
    diff = value - base
    better = diff > 0 if goal == "maximize" else diff < 0
    verdict = "better" if better else "worse" if diff else "the same"
    return f"{metric} {value:.4f} vs baseline {base:.4f} ({baseline['name']}): {diff:+.4f}, {verdict}"
