"""Running containers found in the cgroup2 hierarchy (stockade.sensor.containers.discover)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stockade.sensor.containers.discover import cgroup2_mount, parent_dirs, running_containers


def test_cgroup2_mount_is_read_from_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    assert cgroup2_mount(str(info)) == "/sys/fs/cgroup/unified"
    info.write_text("30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n")
    assert cgroup2_mount(str(info)) is None
    assert cgroup2_mount(str(tmp_path / "missing")) is None


def test_a_fake_hierarchy_gives_containers_with_processes_only(tmp_path: Path) -> None:
    cid = "a" * 64
    live = tmp_path / "libpod_parent" / f"libpod-{cid}"
    (live / "inner").mkdir(parents=True)
    (live / "cgroup.procs").write_text("")
    (live / "inner" / "cgroup.procs").write_text("42\n7\n")
    dead = tmp_path / "libpod_parent" / f"libpod-{'b' * 64}"
    dead.mkdir()
    (dead / "cgroup.procs").write_text("")
    (tmp_path / "system.slice").mkdir()
    (tmp_path / "system.slice" / "cgroup.procs").write_text("1\n")
    found = running_containers(str(tmp_path))
    assert [(c.full_id, c.runtime, c.pids, c.pid) for c in found] == [(cid, "podman", (7, 42), 7)]
    assert found[0].cgroup_dir == str(live) and found[0].cgroup_id == os.stat(live).st_ino


def test_parent_dirs_hold_containers_and_no_host_service(tmp_path: Path) -> None:
    """The runtimes' parents that exist, and a pod's directory a container is in; never the root,
    system.slice (even with a docker container in it), user.slice or init.scope."""
    pod = tmp_path / "kubepods" / "besteffort" / "pod0a1b2c3d-0000-4000-8000-00000000abcd"
    where = {
        "podman": tmp_path / "libpod_parent" / f"libpod-{'a' * 64}",
        "kube": pod / ("c" * 64),
        "systemd docker": tmp_path / "system.slice" / f"docker-{'d' * 64}.scope",
    }
    for d in [*where.values(), tmp_path / "user.slice", tmp_path / "init.scope"]:
        d.mkdir(parents=True)
        (d / "cgroup.procs").write_text("42\n")
    found = parent_dirs(running_containers(str(tmp_path)), str(tmp_path))
    names = {"libpod_parent", "kubepods", "kubepods/besteffort", str(pod.relative_to(tmp_path))}
    assert found == {str(tmp_path / n): os.stat(tmp_path / n).st_ino for n in names}
    assert parent_dirs([], str(tmp_path / "missing")) == {}


@pytest.mark.root
@pytest.mark.containers
def test_a_podman_container_is_found_with_its_cgroup(podman_container: Any) -> None:
    c = podman_container()
    found = {r.full_id: r for r in running_containers()}
    assert c.id in found, sorted(found)
    r = found[c.id]
    assert r.runtime == "podman" and c.pid in r.pids
    line = next(x for x in Path(f"/proc/{c.pid}/cgroup").read_text().splitlines() if x.startswith("0::"))
    assert r.cgroup_dir.endswith(line[3:])
