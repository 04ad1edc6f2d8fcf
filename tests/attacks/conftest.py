"""tests/attacks' fixtures: the attack image, one sensor node for the whole directory, each
module's procedures (tests/attack_harness.py) and the ordinary workload that runs beside them
(tests/ordinary_workload.py), checked last by test_zz_ordinary_workload.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import trees
from attack_harness import ATTACK_IMAGE, Attacks
from containers import _need_root, import_tree, podman
from helpers import need
from ordinary_workload import OrdinaryWorkload
from sensornode import Node


@pytest.fixture(scope="session")
def attack_image(podman_conf: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``localhost/stockade-test-attack:<tree key>``, imported once from tests/trees.py's
    debian_attack tree (kept afterwards, as the busybox image is)."""
    _need_root()
    tree = trees.debian_attack()
    image = f"{ATTACK_IMAGE}:{tree.parent.name.rsplit('-', 1)[-1]}"
    if podman(["image", "exists", image], timeout=60).returncode != 0:
        import_tree(tree, image, podman_conf, tmp_path_factory.mktemp("attack-image"), timeout=600)
    return image


@pytest.fixture(scope="package")
def attack_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The eBPF sensor with the whole pack and ``rule_matching: first`` (what users run), for every
    module of the directory (they tell their alerts apart by container)."""
    _need_root()
    n = Node([str(tmp_path_factory.mktemp("watched"))], "auto", rule_matching="first", host_scope=False)
    n.sensor.start()
    try:
        need(
            n.sensor.backends.get("ebpf") is not None, "the eBPF sensor did not start (scripts/build-bpf.sh)"
        )
        yield n
    finally:
        n.sensor.close()


@pytest.fixture(scope="package", autouse=True)
def ordinary_workload(attack_node: Node, attack_image: str) -> Iterator[OrdinaryWorkload]:
    """An ordinary workload (tests/ordinary_workload.py) running from the directory's first test on,
    beside the attacks: test_zz_ordinary_workload.py checks it raised nothing."""
    w = OrdinaryWorkload(attack_node, attack_image)
    w.start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def attacks(request: pytest.FixtureRequest, attack_node: Node, attack_image: str) -> Iterator[Attacks]:
    """The module's ``PROCEDURES``, performed at its first check (tests/attack_harness.py)."""
    procedures: Any = getattr(request.module, "PROCEDURES", None)
    assert procedures, f"{request.module.__name__} has no PROCEDURES"
    a = Attacks(attack_node, attack_image, procedures)
    try:
        yield a
    finally:
        a.cleanup()
