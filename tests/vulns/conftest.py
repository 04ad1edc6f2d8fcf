"""Fixtures of the vulnerability tests: an advisory store, the shared OSV records, record writers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import SHARED_DATA, need_file
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
