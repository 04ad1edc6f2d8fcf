"""Fixtures of the runtime tests: a configuration with its own data directory (promotion off, so
modes change only when a test says) and a real SQLite store in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.config import StockadeConfig, load_config
from stockade.storage.store import Store


@pytest.fixture
def cfg(tmp_path: Path) -> StockadeConfig:
    """The configuration: data in `tmp_path`, no automatic promotion."""
    return load_config(
        None, {"data_dir": str(tmp_path), "zero_trust": {"promotion": {"to": "off"}}}, environ={}
    )


@pytest.fixture
def store(cfg: StockadeConfig) -> Iterator[Store]:
    """The store of `cfg` (SQLite in its data directory), closed after the test."""
    s = Store.from_config(cfg)
    try:
        yield s
    finally:
        s.close()
