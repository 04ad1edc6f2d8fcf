"""Container attribution against real runc and podman containers (root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import BackendPoller
from stockade.model.fields import lookup
from stockade.sensor import procfs
from stockade.sensor.containers.drift import exe_upper_layer
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.enrich import Enricher

pytestmark = [pytest.mark.containers, pytest.mark.root]

IMAGE = "localhost/stockade-test-busybox:latest"


def field(ev: dict[str, Any], name: str, arg: str | None = None) -> Any:
    spec = lookup(name)
    assert spec is not None
    return spec.extractor(arg)(ev)


def _resolve(resolver: ContainerResolver, pid: int) -> ContainerInfo | None:
    return resolver.resolve(procfs.read_cgroup_path(pid), procfs.read_mntns(pid))


def _wait_pid(pattern: str, timeout: float = 10.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(
            ["pgrep", "-f", pattern], capture_output=True, text=True, check=False
        ).stdout.split()
        if out:
            return int(out[0])
        time.sleep(0.05)
    raise AssertionError(f"no process matching {pattern!r}")


def test_runc_container_resolved_from_cgroup(runc_container: Any, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    c = runc_container(mounts=[(str(share), "/mnt/x", True)], annotations={"team": "blue"})
    resolver = ContainerResolver()
    cg = procfs.read_cgroup_path(c.pid)
    assert cg and c.id in cg
    info = resolver.resolve(cg)
    assert info is not None and info.complete
    assert info.full_id == c.id and info.runtime == "runc" and info.name == c.id
    assert info.privileged is False
    ev = {"evt.type": "execve", **info.fields()}
    assert field(ev, "container.id") == c.id[:12]
    assert field(ev, "container.mount.dest", "/mnt/x") == "/mnt/x"
    assert field(ev, "container.mount.source", "/mnt/x") == str(share)
    assert field(ev, "container.mount.rdwr", "/mnt/x") is False
    assert field(ev, "container.label", "team") == "blue"
    assert field(ev, "container.mount.dest", "/etc/hostname") is None
    # the same container by its mount namespace alone (a cgroup path runc does not name)
    by_ns = ContainerResolver().resolve("/not-a-container-path", procfs.read_mntns(c.pid))
    assert by_ns is not None and by_ns.full_id == c.id


def test_runc_privileged_and_custom_cgroups_path(runc_container: Any) -> None:
    c = runc_container(privileged=True, cgroups_path=f"/stockade-test/{os.getpid()}-priv")
    info = _resolve(ContainerResolver(), c.pid)
    assert info is not None and info.full_id == c.id
    assert info.privileged is True


def test_podman_container_metadata_on_first_sight(podman_container: Any, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    c = podman_container(volumes=[(str(share), "/mnt/x", "ro")], labels={"app": "web"})
    cg = procfs.read_cgroup_path(c.pid)
    assert cg and f"libpod-{c.id}" in cg
    enricher = Enricher()
    # the very first event seen from the container already has the runtime's metadata
    ev = enricher.enrich(
        {
            "evt.type": "openat",
            "evt.time": time.time_ns(),
            "proc.pid": c.pid,
            "thread.tid": c.pid,
            "fd.name": "/etc/passwd",
            "_cgroup_path": cg,
        }
    )
    assert ev["container.id"] == c.id[:12]
    assert ev["container.full_id"] == c.id
    assert ev["container.name"] == c.name
    assert ev["container.type"] == "podman"
    assert ev["container.image"] == IMAGE
    assert field(ev, "container.image.repository") == "localhost/stockade-test-busybox"
    assert field(ev, "container.image.tag") == "latest"
    assert ev["container.image.digest"].startswith("sha256:")
    assert ev["container.privileged"] is False
    assert field(ev, "container.mount.dest", "/mnt/x") == "/mnt/x"
    assert field(ev, "container.mount.rdwr", "/mnt/x") is False
    assert field(ev, "container.label", "app") == "web"
    assert not any(k.startswith("_") for k in ev)
    assert "<NA>" not in map(str, ev.values())


def test_podman_container_found_by_mount_namespace_still_has_its_image(podman_container: Any) -> None:
    """A process whose cgroup path does not name its container yet (runc moves an exec'd process
    into the container's cgroup late) is found through runc's state by its mount namespace; the
    bundle says podman made it, so podman is asked and the image is there from the first event."""
    c = podman_container()
    info = ContainerResolver().resolve("/not-a-container-path", procfs.read_mntns(c.pid))
    assert info is not None and info.full_id == c.id
    assert info.runtime == "podman"
    assert info.image_repository == "localhost/stockade-test-busybox"
    assert info.complete


def test_podman_privileged(podman_container: Any) -> None:
    c = podman_container(privileged=True)
    info = _resolve(ContainerResolver(), c.pid)
    assert info is not None and info.full_id == c.id and info.privileged is True


def test_host_process_is_host() -> None:
    enricher = Enricher()
    ev = enricher.enrich({"evt.type": "openat", "proc.pid": os.getpid(), "thread.tid": os.getpid()})
    assert ev["container.id"] == "host"
    assert ev["proc.is_exe_upper_layer"] is False
    assert ContainerResolver().resolve(procfs.read_cgroup_path(1), procfs.read_mntns(1)) is None


def test_podman_drift_overlay(podman_container: Any) -> None:
    c = podman_container()
    c.cp(shutil.which("busybox") or "/bin/busybox", "/bin/busybox-drift")
    c.exec(["/bin/busybox-drift", "sleep", "301"], detach=True)
    c.exec(["/bin/sleep", "302"], detach=True)
    drift_pid = _wait_pid("busybox-drift sleep 301")
    image_pid = _wait_pid("^/bin/sleep 302")
    enricher = Enricher()
    for pid, expect in ((drift_pid, True), (image_pid, False)):
        snap = procfs.snapshot(pid)
        raw = {
            "evt.type": "execve",
            "evt.time": time.time_ns(),
            "proc.pid": pid,
            "thread.tid": pid,
            **snap.fields(),
        }
        ev = enricher.enrich(raw)
        assert ev["container.id"] == c.id[:12]
        assert ev["proc.is_exe_upper_layer"] is expect, (pid, snap.exe)
    assert enricher.stats["drift_overlay"] == 2


def test_runc_drift_mtime(runc_container: Any) -> None:
    c = runc_container()
    time.sleep(0.05)
    shutil.copy(c.rootfs / "bin" / "busybox", c.rootfs / "bin" / "busybox-drift")
    c.exec(["/bin/busybox-drift", "sleep", "303"], detach=True)
    c.exec(["/bin/sleep", "304"], detach=True)
    drift_pid = _wait_pid("busybox-drift sleep 303")
    image_pid = _wait_pid("^/bin/sleep 304")
    resolver = ContainerResolver()
    info = _resolve(resolver, drift_pid)
    assert info is not None and info.full_id == c.id
    r = exe_upper_layer(info, procfs.read_exe(drift_pid), drift_pid)
    assert (r.upper, r.method) == (True, "mtime")
    r = exe_upper_layer(info, procfs.read_exe(image_pid), image_pid)
    assert (r.upper, r.method) == (False, "mtime")


class _EnrichingCollector(BackendPoller):
    """Reads the proc connector in a thread and enriches each event at once, as the agent does."""

    def __init__(self) -> None:
        from stockade.sensor.procconn import ProcConnectorBackend

        self.procconn = ProcConnectorBackend()
        self.enricher = Enricher()
        super().__init__(self.procconn, each=self.enricher.enrich, drain=False)

    def __enter__(self) -> _EnrichingCollector:
        self.procconn.start()
        self.enricher.start()
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.procconn.close()


def _container_execs(events: list[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    """The execs of the container's own programs (busybox), in order: the runtime's are not."""
    return [
        e
        for e in events
        if e["evt.type"] == "execve"
        and e.get("proc.exepath") == "/bin/busybox"
        and (e.get("proc.pid") == pid or e.get("container.id") != "host")
    ]


def _expected_metadata(runtime: str, c: Any) -> dict[str, Any]:
    """What every event of a new container carries from its first one on."""
    common = {"container.full_id": c.id, "container.privileged": False, "proc.is_exe_upper_layer": False}
    if runtime == "podman":
        return {**common, "container.type": "podman", "container.name": c.name, "container.image": IMAGE}
    return {**common, "container.type": "runc", "container.name": c.id}  # runc has no name or image


@pytest.mark.parametrize("runtime", ["runc", "podman"])
def test_first_events_of_a_new_container_have_metadata(runtime: str, request: pytest.FixtureRequest) -> None:
    make = request.getfixturevalue(f"{runtime}_container")
    with _EnrichingCollector() as col:
        c = make(["sh", "-c", "sleep 0.2; cat /etc/hostname >/dev/null; exec sleep 300"])
        end = time.monotonic() + 15
        while time.monotonic() < end and len(_container_execs(col.events, c.pid)) < 3:
            time.sleep(0.05)
    execs = _container_execs(col.events, c.pid)
    assert len(execs) >= 3, execs
    # the very first exec of the container's init already carries the runtime's metadata
    first = next(e for e in execs if e["proc.pid"] == c.pid)
    want = _expected_metadata(runtime, c)
    for e in [first, *execs]:
        assert {k: e.get(k) for k in want} == want
    assert col.enricher.resolver.stats["undescribed"] == 0
