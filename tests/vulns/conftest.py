"""Fixtures of the vulnerability tests: an advisory store, the shared OSV records, record writers."""

from __future__ import annotations

import email.parser
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from helpers import SHARED_DATA, need_file
from stockade.model.package import Package
from stockade.packages.cataloger import Tree
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
    """The PyPI packages of the old venv, read from its dist-info METADATA (Name, Version)."""
    venv = old_venv
    out = []
    for meta in sorted(venv.glob("lib/python*/site-packages/*.dist-info/METADATA")):
        msg = email.parser.BytesHeaderParser().parsebytes(meta.read_bytes())
        name, version = str(msg["Name"]), str(msg["Version"])
        inner = "/" + str(meta.relative_to(venv))
        out.append(
            Package(name, version, "PyPI", f"pkg:pypi/{name.lower()}@{version}", inner, found_by="test")
        )
    return out


class DistInfoCataloger:
    """A stand-in for the python cataloger (another part of issue 16) in the scan tests."""

    name = "test-dist-info"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:
        """METADATA files of dist-info directories."""
        del entry
        return filename == "METADATA" and inner.rsplit("/", 2)[-2].endswith(".dist-info")

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The one package of a METADATA file."""
        msg = email.parser.BytesHeaderParser().parsebytes(tree.read_bytes(inner))
        name, version = str(msg["Name"]), str(msg["Version"])
        yield Package(name, version, "PyPI", f"pkg:pypi/{name.lower()}@{version}", inner, found_by=self.name)


@pytest.fixture
def python_cataloger(monkeypatch: pytest.MonkeyPatch) -> None:
    """`catalog_tree` with the stand-in python cataloger when the registry has none for PyPI."""
    from stockade.packages import walk

    monkeypatch.setattr(walk, "all_catalogers", lambda: [DistInfoCataloger()])
