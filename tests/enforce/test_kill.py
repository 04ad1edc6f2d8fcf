"""Killing a container (cgroup.kill, or SIGKILL to every pid) on real process trees and podman, and
killing at exec what a container may not run (the exec killer), in podman containers."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers import PodmanFactory
from helpers import busy_cores, wait_until
from stockade.enforce.cgroup2 import cgroup_dir_of
from stockade.enforce.interface import Denial, EnforceError
from stockade.enforce.kill import ExecKiller, kill_container, pids_of
from stockade.sensor.containers.discover import cgroup2_mount

pytestmark = [pytest.mark.root]


@pytest.fixture(name="busy_cores")
def _busy_cores() -> Iterator[None]:
    with busy_cores():
        yield


@pytest.fixture
def cgroup() -> Iterator[str]:
    """A cgroup2 directory with a sub-directory, removed (empty) afterwards."""
    root = cgroup2_mount()
    assert root is not None
    path = os.path.join(root, f"stk-kill-{secrets.token_hex(4)}")
    os.makedirs(os.path.join(path, "sub"))
    try:
        yield path
    finally:
        for d in (os.path.join(path, "sub"), path):
            _rmdir_when_empty(d)


def _rmdir_when_empty(path: str) -> None:
    assert wait_until(lambda: not pids_of(path), 10)
    os.rmdir(path)


#: a shell that keeps starting children (each a `sleep`), so a kill races with forks
FORKER = "while :; do sleep 100 & sleep 0.01; done"


def _start_in(cgroup: str, script: str) -> subprocess.Popen[bytes]:
    """`sh -c script`, moved into `cgroup` before it runs the script."""
    p = subprocess.Popen(["/bin/sh", "-c", f"read _; {script}"], stdin=subprocess.PIPE)
    Path(cgroup, "cgroup.procs").write_text(str(p.pid))
    assert p.stdin is not None
    p.stdin.write(b"go\n")
    p.stdin.close()
    return p


@pytest.mark.usefixtures("busy_cores")
@pytest.mark.parametrize("use_cgroup_kill", [True, False], ids=["cgroup.kill", "sigkill"])
def test_every_process_of_the_tree_is_killed(cgroup: str, use_cgroup_kill: bool) -> None:
    procs = [_start_in(cgroup, FORKER), _start_in(os.path.join(cgroup, "sub"), FORKER)]
    assert wait_until(lambda: len(pids_of(cgroup)) >= 6, 10)
    res = kill_container(cgroup, use_cgroup_kill=use_cgroup_kill)
    assert res.method == ("cgroup.kill" if use_cgroup_kill else "sigkill")
    assert res.empty and res.pids >= 6 and pids_of(cgroup) == []
    for p in procs:
        assert p.wait(5) == -9
    print(f"{res.method}: {res.pids} processes in {res.elapsed_s * 1000:.1f} ms")


def test_a_v1_directory_is_refused() -> None:
    with pytest.raises(EnforceError, match="not in a cgroup2 hierarchy"):
        kill_container("/sys/fs/cgroup/pids")


@pytest.mark.containers
def test_a_podman_container_is_emptied(podman_container: PodmanFactory) -> None:
    c = podman_container()
    c.exec(["sh", "-c", "sleep 300 & sleep 300 &"], detach=True)
    cg = cgroup_dir_of(c.pid)
    assert wait_until(lambda: len(pids_of(cg)) >= 2, 10)
    res = kill_container(cg)
    assert res.empty and res.method == "cgroup.kill"
    assert wait_until(lambda: c.inspect()["State"]["Running"] is False, 15)


class Denials:
    def __init__(self) -> None:
        self.got: list[Denial] = []

    def __call__(self, d: Denial) -> None:
        self.got.append(d)

    def wait_for(self, target: str) -> Denial:
        assert wait_until(lambda: any(d.target == target for d in self.got), 10), self.got
        return next(d for d in self.got if d.target == target)


#: a fresh copy of busybox named echo in directory {d}, run
FRESH = "mkdir -p {d} && cp /bin/busybox {d}/echo && {d}/echo"


@pytest.fixture
def killer() -> Iterator[tuple[ExecKiller, Denials]]:
    sink = Denials()
    k = ExecKiller(sink)
    k.start()
    try:
        yield k, sink
    finally:
        k.stop()


@pytest.mark.ebpf
@pytest.mark.containers
@pytest.mark.usefixtures("busy_cores")
def test_an_exec_outside_the_allow_list_is_killed_before_it_runs(
    podman_container: PodmanFactory, killer: tuple[ExecKiller, Denials]
) -> None:
    k, sink = killer
    c, other = podman_container(), podman_container()
    root = f"/proc/{c.pid}/root"
    assert k.arm(c.id, cgroup_dir_of(c.pid), root, ["/bin/busybox", "/bin/nothere"], policy="web") == [
        "/bin/nothere"
    ]
    assert k.armed() == [c.id]
    # busybox (every applet is a link to it) runs; a copy of it, a new file, is killed at exec
    # (a copy named echo: busybox picks its applet by name)
    r = c.exec(["sh", "-c", f"{FRESH.format(d='/tmp/new')} ran; echo rc=$?"])
    assert "ran" not in r.stdout and "rc=137" in r.stdout, r
    d = sink.wait_for("/tmp/new/echo")
    assert (d.kind, d.container, d.blocked, d.verdict.policy, d.verdict.rule) == (
        "exec",
        c.id,
        True,
        "web",
        "default",
    )
    # another container is not watched
    r = other.exec(["sh", "-c", f"{FRESH.format(d='/tmp/new')} ran"])
    assert r.stdout.strip() == "ran", r
    # audit only: it runs, and is reported
    k.arm(c.id, cgroup_dir_of(c.pid), root, ["/bin/busybox"], policy="web", audit_only=True)
    r = c.exec(["sh", "-c", f"{FRESH.format(d='/tmp/new2')} ran"])
    assert r.stdout.strip() == "ran", r
    assert sink.wait_for("/tmp/new2/echo").blocked is False
    k.disarm(c.id)
    assert k.armed() == []
    r = c.exec(["/tmp/new/echo", "ran"])
    assert r.stdout.strip() == "ran", r
