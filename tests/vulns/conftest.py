"""Fixtures of the vulnerability tests: an advisory store, the shared OSV records, record writers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import SHARED_DATA, need_file
from stockade.model.package import Package
from stockade.storage.advisories import AdvisoryStore
from stockade.storage.store import Store


@pytest.fixture(scope="session")
def osv_dir() -> Path:
    """../shared/data/osv: the PyPA advisory database's YAML records (a folder per package)."""
    return need_file(SHARED_DATA / "osv")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite store's URL."""
    return f"sqlite:///{tmp_path / 'data' / 'stockade.db'}"


@pytest.fixture
def advisories(db_url: str) -> Iterator[AdvisoryStore]:
    """An empty advisory store."""
    with Store(db_url) as store:
        yield AdvisoryStore(store)


@pytest.fixture(scope="session")
def osv_template(tmp_path_factory: pytest.TempPathFactory, osv_dir: Path) -> Path:
    """A SQLite store holding ../shared/data/osv, imported once per session (copied per test)."""
    from stockade.vulns.dbimport import import_paths

    path = tmp_path_factory.mktemp("osv-db") / "stockade.db"
    with Store(f"sqlite:///{path}") as store:
        rep = import_paths(AdvisoryStore(store), [osv_dir])
    assert rep.problems == 0
    return path


@pytest.fixture
def osv_db(osv_template: Path, tmp_path: Path) -> str:
    """The URL of a fresh copy of the store holding ../shared/data/osv."""
    dest = tmp_path / "data" / "stockade.db"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(osv_template, dest)
    return f"sqlite:///{dest}"


@pytest.fixture(scope="session")
def old_venv_packages(old_venv: Path) -> list[Package]:
    """The packages of the old venv, as `stockade scan rootfs` catalogs them."""
    from stockade.packages.walk import catalog_tree

    cat = catalog_tree(old_venv)
    assert cat.errors == []
    return cat.packages
