"""Computer-generated vs original product reviews (English; Salminen et al. 2022, "Creating and
detecting fake reviews of online products", J. Retailing and Consumer Services 64).

The published CSV ("fake reviews dataset.csv", 40,432 rows) has the columns `category`, `rating`,
`label` (CG = computer-generated, OR = original) and `text_`. No package reachable here ships it:
point `data.path` at your copy. Labels become `computer_generated` / `original`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import RawExamples
from datamodules.dataset import DatasetConfig
from experiments.core.errors import DataError

LABELS = {"CG": "computer_generated", "OR": "original"}
COLUMNS = ("category", "rating", "label", "text_")


class FakeReviewsData(DatasetConfig):
    """Computer-generated (CG) vs original (OR) product reviews (Salminen et al. 2022)."""

    tasks: ClassVar = ("text_classification",)
    targets: ClassVar = "fake review: computer_generated / original"
    size: ClassVar = "40,432 reviews (your copy)"
    language: ClassVar = "en"

    dataset: Literal["fake_reviews"] = "fake_reviews"
    path: str = Field(..., description="The data set's CSV: category, rating, label (CG/OR), text_.")
    with_category: bool = Field(False, description="Prefix the text with its product category.")

    def source_files(self) -> list[Path]:
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise DataError(
                f"data.path: {path} does not exist; download the fake reviews dataset CSV "
                "(Salminen et al. 2022; columns category,rating,label,text_) and point data.path at it."
            )
        return [path]

    def allowed_labels(self) -> list[str]:
        # the class to detect second: binary thresholds maximise the F1 of label index 1
        return ["original", "computer_generated"]

    def read(self, files: list[Path]) -> RawExamples:
        (path,) = files
        raw = RawExamples()
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not set(COLUMNS) <= set(reader.fieldnames):
                raise DataError(f"{path}: expected columns {', '.join(COLUMNS)} (got {reader.fieldnames}).")
            for row in reader:
                where = f"{path.name} line {reader.line_num}"
                if None in row or any(v is None for v in row.values()):
                    raw.reject("malformed", where)
                    continue
                text = row["text_"]
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raw.reject("undecodable", where)
                    continue
                text = text.strip()
                if text and self.with_category and row["category"].strip():
                    text = f"{row['category'].strip().replace('_', ' ')}: {text}"
                label = row["label"].strip()
                raw.add(text or None, LABELS.get(label, label or None), where)
        return raw
