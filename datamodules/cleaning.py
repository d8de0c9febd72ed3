"""Cleaning with a report: every dropped row is counted by reason, never dropped silently.

Reasons, in the order they are applied: malformed rows, undecodable bytes and values that do not
parse (a price such as "See price in cart"; all found while reading),
empty texts, missing labels, labels outside the allowed set, the same text under conflicting labels
(every copy dropped), exact duplicate texts (the first copy kept). Duplicates go before any split, so
no text can land in two splits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

REASONS = (
    "malformed",
    "undecodable",
    "unparseable_value",
    "empty_text",
    "missing_label",
    "unknown_label",
    "conflicting_label",
    "duplicate",
)
EXAMPLES_PER_REASON = 3


@dataclass
class RawExamples:
    """What a DataModule read from disk, before cleaning.

    `where` names each row for the report (`reviews.csv line 7`); `split` holds the file's own split
    (train/val/test) when it has one. `problems` are rows already rejected while reading.
    """

    texts: list[str | None] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    split: list[str] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason, where)
    # the label set the reader found (Banking77: the train file's intents); None: the data set's own
    allowed: list[str] | None = None

    def add(self, text: str | None, label: str | None, where: str, split: str | None = None) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.where.append(where)
        if split is not None:
            if self.split is None:
                self.split = []
            self.split.append(split)

    def reject(self, reason: str, where: str) -> None:
        assert reason in REASONS, reason
        self.problems.append((reason, where))


@dataclass
class CleaningReport:
    """Counts of rows read, dropped (by reason) and kept, with a few example locations per reason."""

    source: str
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {r: 0 for r in REASONS})
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    kept: int = 0

    def drop(self, reason: str, where: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples[reason]) < EXAMPLES_PER_REASON:
            self.examples[reason].append(where)

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "dropped": dict(self.dropped),
            "examples": {k: list(v) for k, v in self.examples.items() if v},
            "kept": self.kept,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CleaningReport:
        rep = cls(source=d["source"], rows_read=d["rows_read"], kept=d["kept"])
        rep.dropped.update(d["dropped"])
        for k, v in d.get("examples", {}).items():
            rep.examples[k] = list(v)
        return rep

    def table(self, caption: str, note: str = "") -> Any:
        """The report as a rich table, as the DataModules print it; `note` follows the title."""
        from rich.table import Table

        table = Table(title=f"Cleaning report: {self.source}{note}")
        table.add_column("rows")
        table.add_column("count", justify="right")
        table.add_column("examples")
        table.add_row("read", str(self.rows_read), "")
        for reason, n in self.dropped.items():
            if n:
                table.add_row(
                    f"dropped: {reason.replace('_', ' ')}", str(n), "; ".join(self.examples.get(reason, []))
                )
        table.add_row("kept", str(self.kept), "")
        table.caption = caption
        return table

    def summary(self) -> str:
        parts = [f"{n} {r.replace('_', ' ')}" for r, n in self.dropped.items() if n]
        dropped = ", ".join(parts) if parts else "nothing"
        return f"{self.source}: read {self.rows_read} rows, dropped {dropped}; kept {self.kept}"


@dataclass
class CleanExamples:
    texts: list[str]
    labels: list[str]
    split: list[str] | None


def clean(
    raw: RawExamples,
    allowed_labels: list[str] | None,
    source: str,
    *,
    drop_duplicates: bool = True,
    drop_conflicts: bool = True,
    duplicates_by_label: bool = False,
) -> tuple[CleanExamples, CleaningReport]:
    """Apply the cleaning rules to `raw`; return what is kept and the report.

    A duplicate is the same text (classification), or with `duplicates_by_label` the same text and
    label (regression: one spec sheet sold at two prices is two observations, not a conflict).
    """
    rep = CleaningReport(source=source, rows_read=len(raw.texts) + len(raw.problems))
    for reason, where in raw.problems:
        rep.drop(reason, where)
    allowed = set(allowed_labels) if allowed_labels is not None else None

    keep: list[int] = []
    for i, (text, label) in enumerate(zip(raw.texts, raw.labels)):
        if text is None or not text.strip():
            rep.drop("empty_text", raw.where[i])
        elif label is None or (isinstance(label, str) and not label.strip()):
            rep.drop("missing_label", raw.where[i])
        elif allowed is not None and label not in allowed:
            rep.drop("unknown_label", f"{raw.where[i]} (label {label!r})")
        else:
            keep.append(i)

    def key(i: int) -> str:
        return raw.texts[i].strip()  # type: ignore[union-attr]

    if drop_conflicts:
        labels_of: dict[str, set[str]] = defaultdict(set)
        for i in keep:
            labels_of[key(i)].add(raw.labels[i])  # type: ignore[arg-type]
        conflicted = {t for t, ls in labels_of.items() if len(ls) > 1}
        if conflicted:
            still = []
            for i in keep:
                if key(i) in conflicted:
                    rep.drop("conflicting_label", raw.where[i])
                else:
                    still.append(i)
            keep = still

    if drop_duplicates:
        seen: set[str] = set()
        still = []
        for i in keep:
            k = key(i) + ("\x00" + str(raw.labels[i]) if duplicates_by_label else "")
            if k in seen:
                rep.drop("duplicate", raw.where[i])
            else:
                seen.add(k)
                still.append(i)
        keep = still

    rep.kept = len(keep)
    out = CleanExamples(
        texts=[key(i) for i in keep],
        labels=[raw.labels[i] for i in keep],  # type: ignore[misc]
        split=[raw.split[i] for i in keep] if raw.split is not None else None,
    )
    return out, rep
