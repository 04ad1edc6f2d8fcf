"""A walk's child process (stockade.inventory.assets.catalog_child) ends when its caller stops: a
`stockade up` that stops during the host's walk stops at once and leaves no walk behind."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stockade.inventory.assets import AssetScanner, ScanFailed, catalog_child

#: the whole host's root: a walk of minutes at the lowest priority, under way when it is stopped
SLOW_ROOT = "/"


def test_a_walk_catalogs_a_tree(tmp_path: Path) -> None:
    site = tmp_path / "usr" / "lib" / "python3" / "dist-packages" / "stk_demo-1.2.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: stk-demo\nVersion: 1.2\n")
    cat = catalog_child(str(tmp_path), stop=threading.Event())
    assert cat.files_seen >= 1
    assert [(p.name, p.version) for p in cat.packages] == [("stk-demo", "1.2")], cat.packages


def test_a_walk_under_way_is_killed_when_stopped() -> None:
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        walk = pool.submit(catalog_child, SLOW_ROOT, (), 600.0, stop)
        time.sleep(0.5)
        assert not walk.done()
        t0 = time.monotonic()
        stop.set()
        with pytest.raises(ScanFailed, match="stopped"):
            walk.result(timeout=10)
        # the child was killed and reaped (catalog_child returns once it is), not waited out
        assert time.monotonic() - t0 < 5


def test_no_walk_starts_once_stopped() -> None:
    stop = threading.Event()
    stop.set()
    t0 = time.monotonic()
    with pytest.raises(ScanFailed, match="stopped"):
        catalog_child(SLOW_ROOT, stop=stop)
    assert time.monotonic() - t0 < 1


def test_a_walk_longer_than_its_timeout_fails() -> None:
    with pytest.raises(ScanFailed, match=r"longer than 0\.5s"):
        catalog_child(SLOW_ROOT, timeout_s=0.5)


def test_closing_the_scanner_ends_the_host_walk() -> None:
    scanner = AssetScanner(hostname="stk-test", host_root=SLOW_ROOT)
    with ThreadPoolExecutor(1) as pool:
        walk = pool.submit(scanner.host)
        time.sleep(0.5)
        scanner.close()
        with pytest.raises(ScanFailed, match="stopped"):
            walk.result(timeout=10)
    assert scanner.stats["host_scans"] == 0
