"""Computer-generated vs original product reviews (English; Salminen et al. 2022, "Creating and
detecting fake reviews of online products", J. Retailing and Consumer Services 64).

The published CSV ("fake reviews dataset.csv", 40,432 rows) has the columns `category`, `rating`,
`label` (CG = computer-generated, OR = original) and `text_`. No package reachable here ships it:
point `data.path` at your copy. Labels become `computer_generated` / `original`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from datamodules.cleaning import RawExamples
from datamodules.text_classification_data import TextClassificationDataModule
from experiments.core.errors import DataError

LABELS = {"CG": "computer_generated", "OR": "original"}
COLUMNS = ("category", "rating", "label", "text_")


class FakeReviewsDataModule(TextClassificationDataModule):
    name = "fake_reviews"
    language = "en"

    def source_files(self) -> list[Path]:
        path = Path(self.cfg.path).expanduser()
        if not path.is_file():
            raise DataError(f"data.path: {path} does not exist; download the fake reviews dataset CSV "
                            "(Salminen et al. 2022; columns category,rating,label,text_) and point data.path at it.")  # fmt: skip
        return [path]

    def allowed_labels(self) -> list[str]:
        # the class to detect second: binary thresholds maximise the F1 of label index 1
        return ["original", "computer_generated"]

    def read(self) -> RawExamples:
        (path,) = self.source_files()
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
                if text and self.cfg.with_category and row["category"].strip():
                    text = f"{row['category'].strip().replace('_', ' ')}: {text}"
                label = row["label"].strip()
                raw.add(text or None, LABELS.get(label, label or None), where)
        return raw
