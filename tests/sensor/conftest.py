"""The sensor tests' node fixtures: the native sensor with Stockade's rules (the container fixtures
they use are in tests/containers.py, registered for every directory by tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers import _need_root
from sensornode import Node


def _running_node(
    tmp_path_factory: pytest.TempPathFactory, backend: str, before: list[str] | None = None
) -> Iterator[Node]:
    _need_root()
    n = Node([str(tmp_path_factory.mktemp("watched"))], backend, before)
    n.sensor.start()
    ebpf = n.sensor.backends.get("ebpf")
    if ebpf is not None:
        # the rule families run with every kernel filter on: failed calls and paths no rule reads
        assert ebpf.dropping_failed and {"open", "openat"} <= set(ebpf.dropping_paths), ebpf.dropping_paths
    time.sleep(0.5)
    try:
        yield n
    finally:
        n.sensor.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One running sensor (backend auto: eBPF here) for a test module (tests tell their alerts apart
    by container id and mark)."""
    yield from _running_node(tmp_path_factory, "auto")


@pytest.fixture(scope="module")
def fallback_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The same with the fallback sensors (proc connector, fanotify, conntrack)."""
    yield from _running_node(tmp_path_factory, "fallback")


@pytest.fixture(scope="module")
def falco_node(tmp_path_factory: pytest.TempPathFactory, falco_rules_path: Path) -> Iterator[Node]:
    """Backend auto with Falco's stable rules loaded before the pack (as `stockade up` does)."""
    yield from _running_node(tmp_path_factory, "auto", [str(falco_rules_path)])
