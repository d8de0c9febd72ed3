"""`ecomlab compare`: the chosen runs (or every run of a study) side by side.

By default the table fits a terminal: the parameters that differ between the runs, the study's
objective(s) or the runs' monitored metric with its test counterpart, duration, trainable parameters
and model size. `--metrics 'val/*,test/f1'` picks other metrics, `--all` shows every column; the CSV
always keeps every column.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import json
import operator
import re
from pathlib import Path
from typing import Any

from experiments.core.errors import EcomlabError
from experiments.core.fingerprints import NOT_SPLIT_SHAPING
from experiments.results import record_store, run_record
from experiments.results.trials import branched, config_path

SHOWN = ("best_epoch", "time/total_s", "model/trainable_params", "model/sparsity", "model/size_mb")
DEFAULT_FACTS = ("time/total_s", "model/trainable_params", "model/size_mb")
OPS = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
FILTER = re.compile(r"^\s*([\w/.\-]+)\s*(>=|<=|!=|==|>|<|=)\s*(.+?)\s*$")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def collect(targets: list[str], runs_root: Path, storage_url: str | None) -> list[run_record.RunRecord]:
    """Run records for experiment ids and study names, in the order given, without repeats."""
    return resolve(targets, runs_root, storage_url)[0]


def resolve(
    targets: list[str], runs_root: Path, storage_url: str | None
) -> tuple[list[run_record.RunRecord], list[Any]]:
    """(run records, Optuna studies) named by `targets`: experiment ids and/or study names."""
    records: list[run_record.RunRecord] = []
    studies: list[Any] = []
    seen: set[str] = set()
    known_ids = [r.exp_id for r in run_record.list_records(runs_root)]
    for target in targets:
        if run_record.ID_PATTERN.match(target) and target in known_ids:
            found = [run_record.read(runs_root, target)]
        else:
            study, found = _study_records(target, runs_root, storage_url, known_ids)
            studies.append(study)
        for rec in found:
            if rec.exp_id not in seen:
                seen.add(rec.exp_id)
                records.append(rec)
    return records, studies


def _study_records(
    name: str, runs_root: Path, storage_url: str | None, known_ids: list[str]
) -> tuple[Any, list[run_record.RunRecord]]:
    import optuna

    from experiments.results.storage import default_storage_url, storage

    url = storage_url or default_storage_url(runs_root)
    studies: list[str] = []
    if storage_url or (runs_root / "optuna.db").is_file():
        studies = [
            s.study_name for s in optuna.get_all_study_summaries(storage(url), include_best_trial=False)
        ]
    if name not in studies:
        close = difflib.get_close_matches(name, known_ids + studies, n=5, cutoff=0.5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise EcomlabError(
            f"{name!r} is neither a run record under {runs_root}/ nor a study in the storage."
            f"{hint} (`ecomlab runs` and `ecomlab study list` show what there is.)"
        )
    study = optuna.load_study(study_name=name, storage=storage(url))
    fetched = record_store.fetch_study(study, runs_root)  # records of trials that ran on other machines
    if fetched.from_artifacts or fetched.from_storage:
        known_ids = [r.exp_id for r in run_record.list_records(runs_root)]
    if why := fetched.say_unreachable():
        from rich.console import Console

        Console(stderr=True).print(f"[yellow]{why}[/]", highlight=False)
    ids = [t.user_attrs.get("experiment_id") for t in study.get_trials(deepcopy=False)]
    return study, [run_record.read(runs_root, i) for i in ids if i in known_ids]


def differing(records: list[run_record.RunRecord], unsampled: dict[str, set[str]] | None = None) -> list[str]:
    """Config keys (dot-paths) whose values are not the same in every record; `tracking` left out, and
    a key that a record's trial did not sample (a branch of a conditional space not taken) counts as
    absent there."""
    flat = [_taken(r, unsampled) for r in records]
    keys = sorted({k for f in flat for k in f if not k.startswith("tracking.")})
    return [k for k in keys if len({repr(f[k]) for f in flat if k in f}) > 1]


def _taken(r: run_record.RunRecord, unsampled: dict[str, set[str]] | None) -> dict[str, Any]:
    skip = (unsampled or {}).get(r.exp_id, set())
    return {k: v for k, v in flatten(r.config).items() if k not in skip}


def unsampled_keys(studies: list[Any]) -> dict[str, set[str]]:
    """{experiment id: the dot-paths its trial did not sample} for studies with a conditional space:
    a branch's parameter (Optuna names it `path (choice)`) is absent from the trials of the other
    branches."""
    out: dict[str, set[str]] = {}
    for st in studies:
        trials = st.get_trials(deepcopy=False)
        in_branches = {config_path(n) for t in trials for n in t.params if branched(n)}
        for t in trials:
            sampled = {config_path(n) for n in t.params}
            if (exp_id := t.user_attrs.get("experiment_id")) and (gap := in_branches - sampled):
                out[exp_id] = gap
    return out


def parse_filter(expr: str) -> tuple[str, Any, float | str]:
    m = FILTER.match(expr)
    if not m:
        raise EcomlabError(
            f"--filter {expr!r}: expected METRIC OP VALUE, e.g. 'val/f1>0.8' (ops: {' '.join(OPS)})"
        )
    name, op, raw = m.groups()
    try:
        value: float | str = float(raw)
    except ValueError:
        value = raw
    return name, OPS[op], value


def study_objectives(studies: list[Any]) -> list[str]:
    """The objective metric names of the studies, in order, without repeats."""
    names: list[str] = []
    for st in studies:
        for m in st.user_attrs.get("metrics", []):
            if m.get("name") and m["name"] not in names:
                names.append(m["name"])
    return names


def metric_columns(
    records: list[run_record.RunRecord],
    patterns: list[str] | None = None,
    objectives: list[str] | None = None,
    show_all: bool = False,
) -> list[str]:
    """The metric columns to show: all, those matching `patterns`, or the objectives (default: each
    run's `trainer.monitor`) each followed by its test counterpart."""
    available = sorted({k for r in records for k in (r.metrics or {}) if k.startswith(("val/", "test/"))})
    if show_all:
        return available
    if patterns:
        for pat in patterns:
            if not any(fnmatch.fnmatchcase(m, pat) for m in available):
                raise EcomlabError(
                    f"--metrics {pat!r}: matches no metric of these runs; they have "
                    f"{', '.join(available) or 'none'}"
                )
        return [m for m in available if any(fnmatch.fnmatchcase(m, p) for p in patterns)]
    primary = objectives or [r.config.get("trainer", {}).get("monitor", "val/f1") for r in records]
    cols: list[str] = []
    for name in primary:
        pair = [name, "test/" + name.split("/", 1)[1]] if name.startswith("val/") else [name]
        cols.extend(c for c in pair if c not in cols and (c == name or c in available))
    return cols


def table_rows(
    records: list[run_record.RunRecord],
    sort: str | None = None,
    ascending: bool = False,
    filters: list[str] | None = None,
    top: int | None = None,
    metrics: list[str] | None = None,
    objectives: list[str] | None = None,
    show_all: bool = False,
    unsampled: dict[str, set[str]] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns to show, rows). Rows hold every column (what the CSV writes, and what --sort and
    --filter may name); the columns are the differing parameters, the chosen metrics and facts.
    `unsampled` (from `unsampled_keys`) leaves the parameters of branches not taken empty."""
    params = differing(records, unsampled)
    every_metric = sorted({k for r in records for k in (r.metrics or {}) if k.startswith(("val/", "test/"))})
    extra = [
        m for m in (objectives or []) if m not in every_metric and m not in SHOWN
    ]  # e.g. model/latency_ms
    all_columns = ["experiment_id", "status", *params, *every_metric, *extra, *SHOWN]
    if show_all:
        columns = all_columns
    else:
        facts = [f for f in DEFAULT_FACTS if f not in (objectives or [])]
        columns = ["experiment_id", *params, *metric_columns(records, metrics, objectives), *facts]
    rows = []
    for r in records:
        flat, m = _taken(r, unsampled), r.metrics or {}
        row = {"experiment_id": r.exp_id, "status": r.manifest.get("status", "?")}
        row.update({p: flat.get(p) for p in params})
        row.update({k: m.get(k) for k in (*every_metric, *extra, *SHOWN)})
        rows.append(row)
    for expr in filters or []:
        name, op, value = parse_filter(expr)
        if name not in all_columns:
            raise EcomlabError(f"--filter {expr!r}: no column {name!r}; columns: {', '.join(all_columns)}")
        rows = [r for r in rows if r.get(name) is not None and _compare(op, r[name], value)]
    if sort:
        if sort not in all_columns:
            raise EcomlabError(f"--sort {sort!r}: no column {sort!r}; columns: {', '.join(all_columns)}")
        present = [r for r in rows if r.get(sort) is not None]
        missing = [r for r in rows if r.get(sort) is None]
        rows = sorted(present, key=lambda r: r[sort], reverse=not ascending) + missing
    if top is not None:
        rows = rows[:top]
    return columns, rows


def baseline_rows(records: list[run_record.RunRecord], studies: list[Any]) -> list[dict[str, Any]]:
    """One row per baseline: a study's stored one, else the task's baseline fitted (once; cached) on
    each distinct split the records train on."""
    from experiments.config.schema import validate
    from experiments.run import baseline

    found: dict[str, dict[str, Any]] = {}
    for s in studies:
        if s.user_attrs.get("baseline"):
            found[f"study {s.study_name}"] = s.user_attrs["baseline"]
        if s.user_attrs.get("zero_shot"):  # an instruct backbone prompted with no training
            found[f"study {s.study_name}, zero-shot"] = s.user_attrs["zero_shot"]
    if not found:
        splits: dict[str, Any] = {}
        for r in records:
            try:
                cfg = validate(r.config)
            except EcomlabError:
                continue  # a record whose config no longer validates has no split to fit on
            key = json.dumps(
                [cfg.task, cfg.data.model_dump(mode="json", exclude=set(NOT_SPLIT_SHAPING))],
                sort_keys=True,
                default=str,
            )
            splits.setdefault(key, cfg)
        for cfg in splits.values():
            try:
                b = baseline.compute(cfg)
            except Exception:  # noqa: BLE001 - a reference row only; the comparison stands without it
                continue
            if b is not None:
                found[cfg.data.dataset] = b
    rows = []
    for where, b in found.items():
        rows.append(
            {
                "experiment_id": "baseline",
                "status": "baseline",
                "name": b["name"],
                "where": where,
                **b["metrics"],
            }
        )
    return rows


def short_names(columns: list[str]) -> dict[str, str]:
    """Table headers: each dot-path parameter by its shortest suffix that no other column shares
    (`optim.lr` -> `lr`, `model.tiny.hidden` -> `tiny.hidden` next to `head.hidden`)."""
    out = {}
    dotted = [c for c in columns if "." in c and "/" not in c]
    for c in columns:
        if c not in dotted:
            out[c] = {
                "experiment_id": "id",
                "time/total_s": "time",
                "model/trainable_params": "trainable",
                "model/size_mb": "MB",
            }.get(c, c)
            continue
        parts = c.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if sum(1 for d in dotted if d == suffix or d.endswith("." + suffix)) == 1:
                out[c] = suffix
                break
    return out


def _compare(op: Any, left: Any, right: float | str) -> bool:
    try:
        return bool(op(float(left), right)) if isinstance(right, float) else bool(op(str(left), right))
    except (TypeError, ValueError):
        return False


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
