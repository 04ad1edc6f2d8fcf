"""The proc connector backend on the real kernel: exec/fork/exit of our own children, loss accounting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import BackendPoller
from stockade.sensor import procfs
from stockade.sensor.procconn import ProcConnectorBackend

pytestmark = pytest.mark.root


@pytest.fixture
def backend() -> Any:
    b = ProcConnectorBackend()
    b.start()
    yield b
    b.close()


def descendants(events: list[dict[str, Any]], root: int) -> set[int]:
    """Pids of `root` and the processes it forked (transitively), from clone events."""
    pids = {root}
    changed = True
    while changed:
        changed = False
        for e in events:
            if e["evt.type"] == "clone" and e.get("proc.ppid") in pids and e["proc.pid"] not in pids:
                pids.add(e["proc.pid"])
                changed = True
    return pids


def descendant_execs(events: list[dict[str, Any]], root: int) -> list[dict[str, Any]]:
    """The execs of `root`'s descendants, each pid counted from its clone to its exit only: with
    pid_max at 32768 a burst of 10,000 processes on a shared machine sees pids reused by others."""
    live = {root}
    out = []
    for e in events:
        t, pid = e["evt.type"], e["proc.pid"]
        if t == "clone" and e.get("proc.ppid") in live:
            live.add(pid)
        elif t == "execve" and pid in live and pid != root:
            out.append(e)
        elif t == "procexit" and pid != root:
            live.discard(pid)
    return out


def test_probe_says_what_it_gives() -> None:
    caps = ProcConnectorBackend.probe()
    assert caps.available, caps.reason
    assert caps.evttypes == {"execve", "clone", "procexit"}
    assert "fd.name" in caps.missing_fields


def test_exec_of_a_living_process_has_proc_fields(backend: ProcConnectorBackend, tmp_path: Path) -> None:
    with BackendPoller(backend) as col:
        p = subprocess.Popen(["/bin/sleep", "0.5"], cwd=tmp_path)
        p.wait()
        time.sleep(0.2)
    evs = [e for e in col.stop() if e["proc.pid"] == p.pid]
    execs = [e for e in evs if e["evt.type"] == "execve"]
    assert len(execs) == 1, evs
    ex = execs[0]
    assert ex["evt.dir"] == "<"
    assert ex["proc.ppid"] == os.getpid()
    assert ex["thread.tid"] == p.pid
    assert ex["proc.exepath"] == os.path.realpath("/bin/sleep")
    assert ex["proc.name"] == "sleep"
    assert ex["proc.cmdline"] == "sleep 0.5"
    assert ex["proc.args"] == "0.5"
    assert ex["proc.exe"] == "/bin/sleep"
    assert ex["proc.cwd"] == str(tmp_path) + "/"
    assert ex["user.uid"] == 0 and ex["group.gid"] == os.getegid()
    assert ex["_mntns"] == procfs.read_mntns(os.getpid())
    assert ex["_cgroup_path"] == procfs.read_cgroup_path(os.getpid())
    assert abs(ex["evt.time"] - time.time_ns()) < 30 * 10**9
    assert ex["_start_ns"] <= ex["evt.time"] + 10**7
    exits = [e for e in evs if e["evt.type"] == "procexit"]
    assert len(exits) == 1 and exits[0]["evt.arg.ret"] == 0 and exits[0]["proc.name"] == "sleep"
    assert exits[0]["proc.duration"] >= 400_000_000


def test_shell_chain_fork_exec_exit(backend: ProcConnectorBackend) -> None:
    with BackendPoller(backend) as col:
        p = subprocess.Popen(["/bin/sh", "-c", "/bin/true; /bin/sleep 0.3; exit 3"])
        p.wait()
    evs = col.stop()
    ours = descendants(evs, p.pid)
    assert len(ours) == 3  # sh, true, sleep
    mine = [e for e in evs if e["proc.pid"] in ours]
    execs = {e["proc.pid"]: e for e in mine if e["evt.type"] == "execve"}
    assert len(execs) == 3
    assert execs[p.pid]["proc.ppid"] == os.getpid()
    children = [pid for pid in ours if pid != p.pid]
    for pid in children:
        assert execs[pid]["proc.ppid"] == p.pid  # from the fork even if /proc was gone
    sleeps = [e for e in execs.values() if e.get("proc.exepath") == os.path.realpath("/bin/sleep")]
    assert len(sleeps) == 1 and sleeps[0]["proc.cmdline"] == "sleep 0.3"
    clones = [e for e in mine if e["evt.type"] == "clone"]
    assert {e["proc.pid"] for e in clones} == ours
    exits = {e["proc.pid"]: e for e in mine if e["evt.type"] == "procexit"}
    assert set(exits) == ours
    assert exits[p.pid]["evt.arg.ret"] == 3 and exits[p.pid]["evt.arg.sig"] == 0
    # order per process: clone, execve, procexit
    for pid in ours:
        kinds = [e["evt.type"] for e in mine if e["proc.pid"] == pid]
        assert kinds == ["clone", "execve", "procexit"], (pid, kinds)


def test_killed_process_exit_signal(backend: ProcConnectorBackend) -> None:
    with BackendPoller(backend) as col:
        p = subprocess.Popen(["/bin/sleep", "30"])
        time.sleep(0.2)
        p.kill()
        p.wait()
    ex = [e for e in col.stop() if e["proc.pid"] == p.pid and e["evt.type"] == "procexit"]
    assert len(ex) == 1 and ex[0]["evt.arg.sig"] == 9


def test_evttypes_selection() -> None:
    b = ProcConnectorBackend()
    b.start({"procexit", "openat"})
    try:
        with BackendPoller(b) as col:
            p = subprocess.Popen(["/bin/true"])
            p.wait()
        evs = [e for e in col.stop() if e["proc.pid"] == p.pid]
    finally:
        b.close()
    assert [e["evt.type"] for e in evs] == ["procexit"]


def burst(n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["/bin/sh", "-c", f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"])


@pytest.mark.slow
def test_burst_of_10000_execs_accounted(capsys: pytest.CaptureFixture[str]) -> None:
    """Every exec of the burst is received or counted as lost (per-CPU sequence numbers)."""
    n = 10_000
    b = ProcConnectorBackend()
    b.start({"execve", "clone", "procexit"})
    try:
        with BackendPoller(b) as col:
            t0 = time.monotonic()
            p = burst(n)
            p.wait()
            elapsed = time.monotonic() - t0
        b.settle()
        evs = col.events + b.wait_idle()
        execs = descendant_execs(evs, p.pid)
        lost = b.lost_total()
        with capsys.disabled():
            print(
                f"\nprocconn burst: {n} execs in {elapsed:.2f}s ({n / elapsed:.0f}/s), received {len(execs)}, "
                f"lost {lost}, ENOBUFS {b.overflows['netlink_enobufs']}",
                file=sys.stderr,
            )
        assert len(execs) <= n
        assert len(execs) + lost >= n
        if b.overflows["netlink_enobufs"] == 0:
            assert lost == 0 and len(execs) == n
    finally:
        b.close()


@pytest.mark.slow
def test_overflow_is_counted_exactly() -> None:
    """A tiny receive buffer and nobody reading: ENOBUFS, and the sequence gaps count each message."""
    n = 2000
    b = ProcConnectorBackend(rcvbuf=65536)
    b.start()
    try:
        p = burst(n)
        p.wait()
        evs = b.wait_idle()
        b.settle()
        evs += b.wait_idle()
        lost = b.lost_total()
        assert b.overflows["netlink_enobufs"] >= 1
        ours = descendants(evs, p.pid)
        mine = [e for e in evs if e["proc.pid"] in ours]
        # our burst alone sent 3 messages (fork, exec, exit) per process
        expected = 3 * (n + 1)
        assert len(mine) < expected
        # every message of ours that did not arrive is counted (others' losses may add to it)
        assert lost >= expected - len(mine)
        received_all = sum(v for k, v in b.received.items() if k != "marker")
        assert received_all + lost >= expected
    finally:
        b.close()
