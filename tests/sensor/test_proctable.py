"""The process table: ancestry, sessions, lifetimes, pid reuse, bounded memory."""

from __future__ import annotations

import gc
import os
import random
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from stockade.model.fields import lookup
from stockade.sensor import procfs
from stockade.sensor.enrich import Enricher
from stockade.sensor.proctable import ProcessTable


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def field(ev: dict[str, Any], name: str, arg: str | None = None) -> Any:
    spec = lookup(name)
    assert spec is not None
    return spec.extractor(arg)(ev)


T0 = 1_700_000_000_000_000_000


def fork(pid: int, ppid: int, t: int) -> dict[str, Any]:
    return {
        "evt.type": "clone",
        "evt.time": t,
        "evt.rawres": 0,
        "proc.pid": pid,
        "thread.tid": pid,
        "proc.ppid": ppid,
    }


def execve(pid: int, path: str, args: str = "", t: int = T0, **kw: Any) -> dict[str, Any]:
    name = os.path.basename(path)[:15]
    ev = {
        "evt.type": "execve",
        "evt.time": t,
        "evt.rawres": 0,
        "proc.pid": pid,
        "thread.tid": pid,
        "proc.name": name,
        "proc.exepath": path,
        "proc.exe": path,
        "proc.args": args,
        "proc.cmdline": f"{name} {args}".strip(),
    }
    ev.update(kw)
    return ev


def _fields(d: dict[str, Any]) -> dict[str, Any]:
    """Extra fields of an event (typed for **: they never fill execve's own parameters)."""
    return d


def exit_(pid: int, t: int) -> dict[str, Any]:
    return {"evt.type": "procexit", "evt.time": t, "proc.pid": pid, "thread.tid": pid, "evt.arg.status": 0}


def chain(table: ProcessTable, base: int = 5000) -> None:
    """init(1) -> sshd(base) -> bash(base+1) -> sh(base+2) -> curl(base+3), all with session base+1."""
    table.observe(execve(1, "/sbin/init", t=T0, **_fields({"proc.ppid": 0, "proc.sid": 1})))
    table.observe(fork(base, 1, T0 + 1))
    table.observe(execve(base, "/usr/sbin/sshd", "-D", T0 + 2))
    table.observe(fork(base + 1, base, T0 + 3))
    table.observe(
        execve(base + 1, "/bin/bash", "-i", T0 + 4, **_fields({"proc.sid": base + 1, "proc.tty": 34816}))
    )
    table.observe(fork(base + 2, base + 1, T0 + 5))
    table.observe(execve(base + 2, "/bin/sh", "-c x", T0 + 6))
    table.observe(fork(base + 3, base + 2, T0 + 7))
    table.observe(execve(base + 3, "/usr/bin/curl", "http://x", T0 + 8))


def test_ancestry_from_events_after_every_process_exited() -> None:
    clock = Clock()
    table = ProcessTable(read_proc=False, clock=clock)
    chain(table)
    for i, pid in enumerate((5003, 5002, 5001, 5000)):
        table.observe(exit_(pid, T0 + 100 + i))
    clock.t += 5  # well inside the grace period
    ev = {
        "evt.type": "connect",
        "proc.pid": 5003,
        "thread.tid": 5003,
        "fd.name": "10.0.0.1:4000->10.0.0.2:80",
    }
    table.enrich(ev)
    assert field(ev, "proc.name") == "curl"
    assert field(ev, "proc.pname") == "sh"
    assert field(ev, "proc.aname", "2") == "bash"
    assert field(ev, "proc.aname", "3") == "sshd"
    assert field(ev, "proc.aname", "4") == "init"
    assert field(ev, "proc.aname", "5") is None
    assert ev["proc.aname"] == ["sh", "bash", "sshd", "init"]
    assert field(ev, "proc.apid", "2") == 5001
    assert field(ev, "proc.aexepath", "1") == "/bin/sh"
    assert field(ev, "proc.pcmdline") == "sh -c x"
    assert ev["proc.sname"] == "bash" and ev["proc.sid"] == 5001
    assert ev["proc.tty"] == 34816
    assert ev["proc.is_exe_from_memfd"] is False


def test_grace_period_then_children_keep_parents() -> None:
    clock = Clock()
    table = ProcessTable(read_proc=False, clock=clock, grace_s=30)
    chain(table)
    table.observe(exit_(5002, T0 + 100))  # sh exits; curl lives on
    table.observe(exit_(5003, T0 + 101))  # then curl exits too
    clock.t += 31
    table.expire()
    # curl (no children) is gone after the grace period; sh stayed while curl's entry existed
    assert 5003 not in table
    assert 5002 in table
    table.expire()
    assert 5002 not in table
    assert 5001 in table  # alive
    assert table.stats["expired"] == 2


def test_failed_exec_and_threads_change_nothing() -> None:
    table = ProcessTable(read_proc=False)
    chain(table)
    table.observe({**execve(5003, "/tmp/evil"), "evt.rawres": -2})
    table.observe({**fork(5010, 5003, T0 + 9), "evt.arg.flags": "CLONE_VM|CLONE_THREAD"})
    e = table.get(5003)
    assert e is not None and e.exepath == "/usr/bin/curl"
    assert 5010 not in table


def test_parent_side_clone_event() -> None:
    table = ProcessTable(read_proc=False)
    chain(table)
    table.observe(
        {"evt.type": "clone", "evt.time": T0 + 20, "evt.rawres": 6000, "proc.pid": 5002, "thread.tid": 5002}
    )
    child = table.get(6000)
    assert child is not None and child.ppid == 5002 and child.name == "sh"


def test_pid_reuse_is_never_wrong_ancestry() -> None:
    clock = Clock()
    table = ProcessTable(read_proc=False, clock=clock)
    chain(table)
    table.observe(exit_(5002, T0 + 100))
    # pid 5002 is reused by an unrelated process that started later
    later = T0 + 10_000_000_000
    table.observe(execve(5002, "/usr/bin/unrelated", t=later, **_fields({"_start_ns": later})))
    assert table.stats["reused"] == 1
    ev = {"evt.type": "open", "proc.pid": 5003}
    table.enrich(ev)
    assert ev.get("proc.pname") is None  # missing, not "unrelated"
    assert "proc.aname" not in ev


def test_exec_keeps_real_parent_when_reparented() -> None:
    clock = Clock()
    table = ProcessTable(read_proc=False, clock=clock)
    chain(table)
    table.observe(fork(5004, 5003, T0 + 10))
    table.observe(exit_(5003, T0 + 11))
    # the exec was read from /proc after the parent died: ppid says 1
    table.observe(execve(5004, "/tmp/payload", t=T0 + 12, **_fields({"proc.ppid": 1})))
    ev = {"evt.type": "open", "proc.pid": 5004}
    table.enrich(ev)
    assert ev["proc.pname"] == "curl" and ev["proc.aname[2]"] == "sh"


def test_memfd_exe() -> None:
    table = ProcessTable(read_proc=False)
    chain(table)
    table.observe(fork(5005, 5003, T0 + 10))
    table.observe(execve(5005, "/memfd:payload", t=T0 + 11))
    ev = {"evt.type": "connect", "proc.pid": 5005}
    table.enrich(ev)
    assert ev["proc.is_exe_from_memfd"] is True


def test_backend_ancestry_is_not_overwritten() -> None:
    table = ProcessTable(read_proc=False)
    chain(table)
    ev = {"evt.type": "open", "proc.pid": 5003, "proc.pname": "given", "proc.name": "given"}
    table.enrich(ev)
    assert ev["proc.pname"] == "given" and ev["proc.name"] == "given" and "proc.aname" not in ev


def test_eviction_prefers_exited_entries() -> None:
    clock = Clock()
    table = ProcessTable(read_proc=False, clock=clock, max_entries=100)
    for pid in range(10, 90):
        table.observe(execve(pid, "/bin/live", t=T0 + pid))
    for pid in range(1000, 1100):
        table.observe(execve(pid, "/bin/short", t=T0 + pid))
        table.observe(exit_(pid, T0 + pid))
    assert len(table) == 100
    assert all(pid in table for pid in range(10, 90))  # no live entry evicted while exited ones remained
    assert table.stats["evicted_exited"] == 80 and table.stats["evicted_live"] == 0
    for pid in range(2000, 2100):
        table.observe(execve(pid, "/bin/live", t=T0 + pid))
    assert len(table) == 100 and table.stats["evicted_live"] > 0


@pytest.mark.slow
def test_churn_memory_is_bounded() -> None:
    """200k exec/exit events over a wide pid space: the table and its memory stay bounded."""
    clock = Clock()
    cap = 4096
    table = ProcessTable(read_proc=False, clock=clock, max_entries=cap, grace_s=30)
    rng = random.Random(7)
    live: list[int] = []

    def churn(n: int, start: int) -> None:
        for i in range(start, start + n):
            pid = rng.randrange(300, 4_000_000)
            parent = rng.choice(live) if live and rng.random() < 0.5 else 1
            table.observe(fork(pid, parent, T0 + i))
            table.observe(execve(pid, f"/usr/bin/tool{i % 50}", f"--run {i}", T0 + i))
            if rng.random() < 0.1 and len(live) < 2000:
                live.append(pid)
            else:
                table.observe(exit_(pid, T0 + i))
            clock.t += 0.001

    churn(20_000, 0)
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    churn(80_000, 20_000)
    gc.collect()
    mid, _ = tracemalloc.get_traced_memory()
    churn(100_000, 100_000)
    gc.collect()
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(table) <= cap
    assert table.stats["evicted_exited"] + table.stats["expired"] > 150_000
    # once full, more churn does not grow memory (a leak of even 40 bytes/event would show: 4 MB)
    assert end - mid < 1_000_000, (base, mid, end)
    ev = {"evt.type": "open", "proc.pid": live[-1]}
    table.enrich(ev)
    assert str(ev["proc.name"]).startswith("tool")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _gone(pid: int) -> bool:
    """Exited: no /proc entry, or a zombie waiting for init to reap it (no exe, no cmdline)."""
    st = procfs.read_stat(pid)
    return st is None or st["state"] in ("Z", "X")


@pytest.fixture
def bash_chain() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """setsid bash -> sh -> sleep, started by the test (each stays a parent: no exec optimisation)."""
    p = subprocess.Popen(["setsid", "bash", "-c", 'sh -c "sleep 30; true"; true'])
    sleep_pid = None
    end = time.monotonic() + 10
    while time.monotonic() < end and sleep_pid is None:
        out = subprocess.run(
            ["pgrep", "-f", "^sleep 30$"], capture_output=True, text=True, check=False
        ).stdout
        for pid in map(int, out.split()):
            anc = procfs.read_stat(pid)
            if anc is not None:
                sh = procfs.read_stat(anc["ppid"])
                if sh is not None and sh["comm"] == "sh" and procfs.read_stat(sh["ppid"])["comm"] == "bash":  # type: ignore[index]
                    sleep_pid = pid
        time.sleep(0.05)
    assert sleep_pid is not None
    yield p, sleep_pid
    # bottom up, so that every process is reaped by its parent and none is left a zombie
    _kill(sleep_pid)
    p.wait(10)


def test_live_chain_from_proc_scan(bash_chain: tuple[subprocess.Popen[bytes], int]) -> None:
    _, sleep_pid = bash_chain
    table = ProcessTable()
    assert table.scan() > 3
    ev = {"evt.type": "nanosleep", "proc.pid": sleep_pid, "thread.tid": sleep_pid}
    table.enrich(ev)
    assert ev["proc.name"] == "sleep"
    assert ev["proc.cmdline"] == "sleep 30"
    assert field(ev, "proc.pname") == "sh"
    assert field(ev, "proc.aname", "2") == "bash"
    assert field(ev, "proc.aname", "3") == "setsid" or field(ev, "proc.apid", "3") == os.getpid()
    assert ev["proc.sname"] == "bash"
    assert str(ev["proc.exepath"]).endswith("/sleep")
    assert ev["proc.cwd"] == os.getcwd().rstrip("/") + "/"


def test_live_chain_from_events_after_exit(bash_chain: tuple[subprocess.Popen[bytes], int]) -> None:
    """Snapshots taken while the chain lived become exec events replayed after it is gone."""
    p, sleep_pid = bash_chain
    sh_pid = procfs.read_stat(sleep_pid)["ppid"]  # type: ignore[index]
    bash_pid = procfs.read_stat(sh_pid)["ppid"]  # type: ignore[index]
    raws = []
    for pid in (bash_pid, sh_pid, sleep_pid):
        snap = procfs.snapshot(pid)
        raws.append(
            {
                "evt.type": "execve",
                "evt.time": snap.start_ns,
                "evt.rawres": 0,
                "proc.pid": pid,
                "thread.tid": pid,
                **snap.fields(),
            }
        )
    _kill(sleep_pid)
    p.wait(10)
    end = time.monotonic() + 10
    while not _gone(sleep_pid) and time.monotonic() < end:
        time.sleep(0.02)
    assert _gone(sleep_pid) and _gone(sh_pid)
    enricher = Enricher(ProcessTable(read_proc=True))
    for raw in raws:
        ev = enricher.enrich(raw)
    assert ev["proc.name"] == "sleep"
    assert ev["proc.pname"] == "sh" and ev["proc.aname[2]"] == "bash"
    assert ev["proc.apid[2]"] == bash_pid
    assert ev["container.id"] == "host"
    assert not any(k.startswith("_") for k in ev)


def test_cached_fields_follow_changes_and_are_bounded() -> None:
    """fields() is cached per table generation: an exec of the parent shows in the child's next
    fields; at most max_cached entries hold a cache."""
    table = ProcessTable(read_proc=False, max_cached=2)
    table.observe(execve(100, "/usr/bin/bash", t=T0))
    for i, pid in enumerate((101, 102, 103)):
        table.observe(fork(pid, 100, T0 + i + 1))
        table.observe(execve(pid, "/usr/bin/cat", t=T0 + i + 2))
    entries = [table.get(p) for p in (101, 102, 103)]
    assert all(e is not None for e in entries)
    first = [table.fields(e)["proc.pname"] for e in entries if e is not None]
    assert first == ["bash", "bash", "bash"]
    assert sum(e.fields_cache is not None for e in entries if e is not None) == 2
    # the parent becomes python: every child's ancestry says so on its next event
    table.observe(execve(100, "/usr/bin/python3", t=T0 + 10))
    assert [table.fields(e)["proc.pname"] for e in entries if e is not None] == ["python3"] * 3
