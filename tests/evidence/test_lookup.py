"""find_container on a cgroup2 tree made for the test: a prefix of several containers is a usage
error listing them, an unknown reference is not found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.errors import NotFoundError, UsageError
from stockade.sensor.containers.lookup import FoundContainer, find_container
from stockade.sensor.containers.podman import PodmanClient

IDS = ("abc1" + "0" * 60, "abc2" + "0" * 60, "def3" + "0" * 60)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for cid in IDS:
        d = tmp_path / "libpod_parent" / f"libpod-{cid}"
        d.mkdir(parents=True)
        (d / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return tmp_path


def _no_podman() -> PodmanClient:
    client = PodmanClient()
    client.binary = None
    return client


def test_prefixes_ids_and_ambiguity(tree: Path) -> None:
    def find(ref: str) -> FoundContainer:
        return find_container(ref, podman=_no_podman(), cgroup_root=str(tree), runc_roots=(str(tree / "no"),))

    assert find("def").id == IDS[2]
    found = find(IDS[0])
    assert found.id == IDS[0] and found.pids == (os.getpid(),) and found.runtime == "podman"
    assert found.cgroup2_dir == str(tree / "libpod_parent" / f"libpod-{IDS[0]}")
    with pytest.raises(UsageError, match=r"'abc' matches 2 running containers: abc100000000, abc200000000"):
        find("abc")
    with pytest.raises(NotFoundError, match="no running container 'zzz'"):
        find("zzz")
    with pytest.raises(UsageError, match="no container given"):
        find("  ")
