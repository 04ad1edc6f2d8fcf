"""Which process and which container an event belongs to when the sensor could not read /proc in
time (the fallback sensors under load): the facts are those of the process's own program, or
unknown; a container's event is never given to the host, and a process is never described by the
program it ran before its exec.

The events are those the proc connector and fanotify backends produce, fed to the real enricher in
the order the sensor guarantees (a process's exec before the file events that follow it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stockade.model.fields import lookup
from stockade.sensor import procfs
from stockade.sensor.containers.podman import PodmanClient
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.enrich import UNKNOWN_CONTAINER, Enricher
from stockade.sensor.procconn import ProcConnectorBackend
from stockade.sensor.proctable import ProcessTable

CID = "ab" * 32
CONTAINER_CGROUP = f"/libpod_parent/libpod-{CID}"
HOST_CGROUP = "/user.slice/user-0.slice/session-1.scope"


class NoPodman(PodmanClient):
    """A podman that knows no container (the container is then known by its cgroup path only)."""

    def inspect(self, cid: str) -> dict[str, Any] | None:
        del cid
        return None


@pytest.fixture
def enricher(tmp_path: Any) -> Iterator[Enricher]:
    resolver = ContainerResolver(runc_roots=(str(tmp_path),), podman=NoPodman(), docker_root=str(tmp_path))
    yield Enricher(ProcessTable(read_proc=False), resolver, read_proc=False, drift=False)


def execve(pid: int, ppid: int, exe: str | None, args: str = "", **kw: Any) -> dict[str, Any]:
    """An exec as the proc connector reports it; `exe` None: gone before /proc was read."""
    ev: dict[str, Any] = {"evt.type": "execve", "evt.rawres": 0, "proc.pid": pid, "thread.tid": pid}
    ev["proc.ppid"] = ppid
    if exe is not None:
        name = exe.rsplit("/", 1)[-1]
        ev.update({"proc.name": name, "proc.exepath": exe, "proc.exe": exe, "proc.args": args})
        ev["proc.cmdline"] = f"{name} {args}".strip()
    ev.update(kw)
    return ev


def fork(pid: int, ppid: int) -> dict[str, Any]:
    return {"evt.type": "clone", "evt.rawres": 0, "proc.pid": pid, "thread.tid": pid, "proc.ppid": ppid}


def open_(pid: int, path: str) -> dict[str, Any]:
    """A file event as fanotify reports it: the pid and the path, nothing of the process."""
    return {"evt.type": "openat", "evt.rawres": 0, "proc.pid": pid, "thread.tid": pid, "fd.name": path}


def start_container(e: Enricher) -> None:
    """A container's init (pid 50, a shell) and a `runc exec` on the host (pid 100) targeting it."""
    e.enrich(execve(50, 1, "/bin/sh", "-c app", _cgroup_path=CONTAINER_CGROUP, _mntns=4026532000))
    runc_args = f"--root /run/runc exec --process /run/p.json --detach {CID}"
    e.enrich(execve(100, 1, "/usr/sbin/runc", runc_args, _cgroup_path=HOST_CGROUP, _mntns=4026531840))


def test_an_exec_read_too_late_below_runc_exec_is_in_the_target_container(enricher: Enricher) -> None:
    start_container(enricher)
    enricher.enrich(fork(101, 100))  # runc init: still runc, on the host
    assert enricher.enrich(open_(101, "/etc/passwd"))["container.id"] == "host"
    # it joins the container and execs `cat /etc/shadow`, which exits before /proc is read
    ev = enricher.enrich(execve(101, 100, None))
    assert ev["container.id"] == CID[:12]
    opened = enricher.enrich(open_(101, "/etc/shadow"))
    assert opened["container.id"] == CID[:12]
    # what runc was is not what cat is: unknown, never runc's command line or directory
    for f in ("proc.name", "proc.cmdline", "proc.exepath", "proc.args", "proc.cwd"):
        assert f not in opened, (f, opened.get(f))
    assert enricher.stats["container_from_runtime"] >= 1


def test_runc_init_stages_between_runc_exec_and_the_program(enricher: Enricher) -> None:
    """runc re-executes itself as `runc init` (named runc:[N:...]); the program is its child."""
    start_container(enricher)
    enricher.enrich(fork(101, 100))
    enricher.enrich(execve(101, 100, "/proc/self/exe", "init", **{"proc.name": "runc:[2:INIT]"}))
    enricher.enrich(fork(102, 101))
    ev = enricher.enrich(execve(102, 101, None))
    assert ev["container.id"] == CID[:12]


def test_a_child_of_a_container_process_stays_in_its_container(enricher: Enricher) -> None:
    start_container(enricher)
    enricher.enrich(fork(60, 50))
    assert enricher.enrich(execve(60, 50, None))["container.id"] == CID[:12]
    assert enricher.stats["container_from_parent"] == 1


def test_a_host_parent_whose_child_cannot_be_read_gives_unknown_not_host(enricher: Enricher) -> None:
    enricher.enrich(execve(200, 1, "/bin/bash", "-i", _cgroup_path=HOST_CGROUP, _mntns=4026531840))
    enricher.enrich(fork(201, 200))
    ev = enricher.enrich(execve(201, 200, None))
    assert ev["container.id"] == UNKNOWN_CONTAINER
    assert enricher.enrich(open_(201, "/etc/shadow"))["container.id"] == UNKNOWN_CONTAINER
    assert enricher.stats["container_unknown"] == 2
    # a rule on containers (Falco's `container` macro: container.id != host) still sees it
    assert ev["container.id"] != "host"


def test_an_exec_that_was_read_replaces_every_fact_of_the_old_program(enricher: Enricher) -> None:
    start_container(enricher)
    enricher.enrich(fork(101, 100))
    ev = enricher.enrich(
        execve(
            101, 100, "/bin/busybox", "/etc/shadow", _cgroup_path=CONTAINER_CGROUP, **{"proc.cwd": "/tmp/"}
        )
    )
    opened = enricher.enrich(open_(101, "/etc/shadow"))
    assert ev["container.id"] == opened["container.id"] == CID[:12]
    assert opened["proc.cwd"] == "/tmp/"
    assert opened["proc.args"] == "/etc/shadow"


def test_the_proc_connector_does_not_carry_the_fork_s_cgroup_into_an_unread_exec() -> None:
    """The fork's cgroup, namespace and directory may have changed before the exec (a runtime's
    exec joins the container's): an exec whose process is gone says nothing of them."""
    b = ProcConnectorBackend(read_proc=True)
    b._want = frozenset({"execve", "clone", "procexit"})
    out: list[dict[str, Any]] = []
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    b._on_fork(0, 1, gone.pid, out)  # a parent unknown to /proc: its child is read from /proc (gone)
    b._table[gone.pid].cgroup_path = HOST_CGROUP
    b._table[gone.pid].mntns = 4026531840
    b._table[gone.pid].cwd = "/var/lib/containers/storage/overlay/x/merged"
    b._on_exec(0, gone.pid, out)
    ev = out[-1]
    assert ev["evt.type"] == "execve" and ev["proc.pid"] == gone.pid
    for k in ("_cgroup_path", "_mntns", "proc.cwd", "proc.cmdline", "proc.exepath"):
        assert k not in ev, (k, ev.get(k))
    assert b.exec_unread == 1 and b.stats.incomplete["exec_unread"] == 1


def test_an_exited_process_has_no_placement() -> None:
    """A zombie's /proc entry still answers, but its cgroup reads as the hierarchy's root (the
    host's): where it ran is unknown, not the host."""
    child = subprocess.Popen(["/bin/true"])  # not reaped until wait()
    pid = child.pid
    try:
        deadline = time.monotonic() + 5
        while procfs.read_mntns(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # until it has exited (a zombie: not reaped yet)
        assert os.path.exists(f"/proc/{pid}")
        assert procfs.read_placement(pid) == (None, None)
        info = procfs.snapshot(pid)
        assert info.cgroup_path is None and info.mntns is None
    finally:
        child.wait()
    here = procfs.read_placement(os.getpid())
    assert here[0] is not None and here[1] is not None


def test_a_name_without_arguments_is_no_command_line(enricher: Enricher) -> None:
    """An exec whose process was already a zombie: its name (from its stat) is known, its arguments
    are not; proc.cmdline is then unknown, never the name alone (which says "run without any")."""
    start_container(enricher)
    enricher.enrich(fork(60, 50))
    ev = enricher.enrich(execve(60, 50, None, **{"proc.name": "rm"}))
    assert ev["proc.name"] == "rm"
    opened = enricher.enrich(open_(60, "/var/log/app.log"))
    for f in ("proc.cmdline", "proc.args"):
        assert f not in opened, (f, opened.get(f))
    # a rule reading the arguments sees them missing (every comparison false), not empty
    spec = lookup("proc.args")
    assert spec is not None and spec.extractor(None)(opened) is None
