"""What the resource tests share (their conftest.py registers the fixtures).

* ``node`` (:class:`Node`): a pure cgroup2 node laid out in ``tmp_path``, its files written as the
  kernel writes them: a container's cgroup2 directory (``cpu.stat``, ``memory.current``,
  ``memory.stat``, ``memory.max``, ``pids.current``, ``pids.max``) and a /proc with the container's
  process (``fd/``, ``net/dev``, ``ns/net``) and the agent's own network namespace. Counters are
  changed between samples with :meth:`Node.set`.
* ``real_cgroup``: cgroups made for the test on this machine (the cgroup2 hierarchy and the v1
  cpuacct, memory and pids hierarchies, whichever are mounted), a process moved into them; removed
  after the test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import need
from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies
from stockade.sensor.containers.discover import RunningContainer, cgroup2_mount

PID = 4242
CID = "c0ffee" + "0" * 58
NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: {lo} 10    0    0    0     0          0         0     {lo} 10    0    0    0     0       0          0
  eth0: {rx} {rxp}    0    0    0     0          0         0 {tx} {txp}    0    0    0     0       0          0
"""
MEMORY_STAT = """\
anon 52428800
file 8388608
kernel 1048576
shmem 0
active_anon 52428800
inactive_anon 0
active_file 4194304
inactive_file {inactive}
unevictable 0
"""


@dataclass
class Node:
    """A pure cgroup2 node in a directory (module docstring)."""

    root: Path
    values: dict[str, int] = field(default_factory=dict)

    @property
    def cgroup(self) -> Path:
        return self.root / "cgroup" / f"libpod-{CID}"

    @property
    def proc(self) -> Path:
        return self.root / "proc"

    def container(self) -> RunningContainer:
        return RunningContainer(CID, "podman", str(self.cgroup), 1234, (PID,))

    def set(self, **values: int) -> None:
        """Write the counters (usage_usec, memory, inactive, memory_max, pids, pids_max, fds, rx,
        rxp, tx, txp, lo) as the kernel would show them now."""
        self.values.update(values)
        v = self.values
        cg = self.cgroup
        (cg / "cpu.stat").write_text(
            f"usage_usec {v['usage_usec']}\nuser_usec {v['usage_usec'] // 2}\nsystem_usec "
            f"{v['usage_usec'] // 2}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"
        )
        (cg / "memory.current").write_text(f"{v['memory']}\n")
        (cg / "memory.stat").write_text(MEMORY_STAT.format(inactive=v["inactive"]))
        (cg / "memory.max").write_text("max\n" if v["memory_max"] == 0 else f"{v['memory_max']}\n")
        (cg / "pids.current").write_text(f"{v['pids']}\n")
        (cg / "pids.max").write_text("max\n" if v["pids_max"] == 0 else f"{v['pids_max']}\n")
        fd = self.proc / str(PID) / "fd"
        for old in fd.iterdir():
            old.unlink()
        for n in range(v["fds"]):
            (fd / str(n)).touch()
        (self.proc / str(PID) / "net" / "dev").write_text(
            NET_DEV.format(lo=v["lo"], rx=v["rx"], rxp=v["rxp"], tx=v["tx"], txp=v["txp"])
        )


@pytest.fixture
def node(tmp_path: Path) -> Node:
    n = Node(tmp_path / "node")
    n.cgroup.mkdir(parents=True)
    for d in (f"{PID}/fd", f"{PID}/net", f"{PID}/ns", "self/ns"):
        (n.proc / d).mkdir(parents=True)
    (n.proc / str(PID) / "ns" / "net").touch()
    (n.proc / "self" / "ns" / "net").touch()  # another inode: the agent's namespace is not the container's
    (n.proc / str(PID) / "cgroup").write_text(f"0::/libpod-{CID}\n")
    n.set(
        usage_usec=1_000_000,
        memory=104_857_600,
        inactive=4_194_304,
        memory_max=0,
        pids=12,
        pids_max=4096,
        fds=7,
        rx=1000,
        rxp=10,
        tx=2000,
        txp=20,
        lo=555,
    )
    return n


@dataclass
class RealCgroup:
    """Cgroups made for a test: the cgroup2 directory (None when no cgroup2 hierarchy is mounted)
    and the v1 directories by controller."""

    v2: str | None
    v1: dict[str, str]

    def add(self, pid: int) -> None:
        """Move process `pid` into every one of them."""
        for d in [self.v2, *self.v1.values()]:
            if d is not None:
                Path(d, "cgroup.procs").write_text(f"{pid}\n")

    def container(self, pids: tuple[int, ...]) -> RunningContainer:
        v2 = self.v2 or "/nonexistent"
        ino = os.stat(v2).st_ino if self.v2 else 0
        return RunningContainer("feed" + secrets.token_hex(30), "unknown", v2, ino, pids)


@pytest.fixture
def real_cgroup() -> Iterator[Callable[[], RealCgroup]]:
    """Makes a RealCgroup (module docstring); every process moved in is killed, every directory removed."""
    need(os.geteuid() == 0, "needs root")
    made: list[RealCgroup] = []

    def make() -> RealCgroup:
        name = f"stockade-test-res-{secrets.token_hex(4)}"
        mount = cgroup2_mount()
        v2 = None
        if mount is not None:
            v2 = os.path.join(mount, name)
            os.mkdir(v2)
        v1 = {}
        for ctl in ("cpuacct", "memory", "pids"):
            where = cgroup_v1_hierarchies().get(ctl)
            if where is not None and where[1] == "/":
                d = os.path.join(where[0], name)
                if not os.path.isdir(d):
                    os.mkdir(d)
                v1[ctl] = d
        cg = RealCgroup(v2, v1)
        made.append(cg)
        return cg

    try:
        yield make
    finally:
        for cg in made:
            _remove(cg)


def _remove(cg: RealCgroup) -> None:
    dirs = {d for d in [cg.v2, *cg.v1.values()] if d is not None}
    for d in dirs:
        try:
            pids = Path(d, "cgroup.procs").read_text().split()
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    for d in dirs:
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
