"""The sampler: counters and rates from a container's cgroup and /proc, on a pure cgroup2 node (files
as the kernel writes them, a FakeClock) and on this machine's real cgroups (v1, v2 or hybrid) with
a process the test starts, also while every core is busy."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import busy_cores
from resources.cgnode import CID, Node, RealCgroup
from stockade.model.clock import FakeClock
from stockade.resources.cgroupfs import locate, parse_keyed, parse_limit
from stockade.resources.procstats import parse_net_dev
from stockade.resources.sampler import Sampler
from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies


def _sampler(node: Node, clock: FakeClock) -> Sampler:
    return Sampler(clock=clock, proc=str(node.proc), hierarchies={})


def test_parsers_read_what_the_kernel_writes() -> None:
    assert parse_keyed("usage_usec 42\nuser_usec 40\nbad line\nx notanumber\n") == {
        "usage_usec": 42,
        "user_usec": 40,
    }
    assert parse_keyed("a 1\nb 2\n", frozenset({"b"})) == {"b": 2}
    assert parse_limit("max\n") is None
    assert parse_limit("9223372036854771712\n") is None  # cgroup v1's "no limit"
    assert parse_limit("4096\n") == 4096
    assert parse_limit("garbage") is None
    counters = parse_net_dev(Path("/proc/self/net/dev").read_text())
    assert counters.rx_bytes >= 0 and counters.tx_packets >= 0


def test_a_pure_cgroup2_node_gives_every_counter_and_rates(node: Node) -> None:
    clock = FakeClock()
    s = _sampler(node, clock)
    [first] = s.sample([node.container()])
    assert first.container_id == CID
    assert (first.cpu_cores, first.rx_bps, first.tx_bps) == (None, None, None)  # no interval yet
    assert first.cpu_usage_ns == 1_000_000_000
    assert first.memory_bytes == 104_857_600 - 4_194_304  # working set: less inactive file
    assert (first.memory_limit_bytes, first.pids, first.pids_limit) == (None, 12, 4096)
    assert first.open_files == 7
    assert (first.rx_bytes, first.rx_packets, first.tx_bytes, first.tx_packets) == (1000, 10, 2000, 20)
    assert first.missing == ()
    assert s.files(node.container()).cpu == (str(node.cgroup), "v2")

    node.set(usage_usec=2_500_000, rx=1000 + 4096, tx=2000 + 1_048_576, memory_max=536_870_912, fds=9)
    clock.advance(2.0)
    [second] = s.sample([node.container()])
    assert second.cpu_cores == pytest.approx(0.75)  # 1.5 s of CPU in 2 s
    assert second.rx_bps == pytest.approx(2048.0) and second.tx_bps == pytest.approx(524_288.0)
    assert second.memory_limit_bytes == 536_870_912 and second.open_files == 9
    assert second.time_ns - first.time_ns == 2_000_000_000


def test_a_counter_that_went_back_gives_no_rate(node: Node) -> None:
    clock = FakeClock()
    s = _sampler(node, clock)
    s.sample([node.container()])
    node.set(rx=10, tx=10)  # the namespace was replaced
    clock.advance(1.0)
    [again] = s.sample([node.container()])
    assert again.rx_bps is None and again.tx_bps is None and again.cpu_cores == 0.0


def test_missing_files_are_reported_not_raised(node: Node) -> None:
    for f in ("memory.current", "pids.current"):
        (node.cgroup / f).unlink()
    s = _sampler(node, FakeClock())
    [x] = s.sample([node.container()])
    assert x.memory_bytes is None and x.cpu_usage_ns is not None
    assert x.pids == 1  # no pids controller: the container's processes are counted
    text = " ".join(x.missing)
    assert "memory: no memory controller" in text and "pids: no pids controller" in text
    (node.cgroup / "cpu.stat").unlink()  # gone after the container was located: said, not raised
    [y] = s.sample([node.container()])
    assert y.cpu_usage_ns is None and any(m.startswith("cpu: ") and "cpu.stat" in m for m in y.missing)


def test_a_container_in_the_hosts_network_namespace_is_not_counted(node: Node) -> None:
    os.unlink(node.proc / "self" / "ns" / "net")
    os.link(node.proc / "4242" / "ns" / "net", node.proc / "self" / "ns" / "net")  # the same inode
    [x] = _sampler(node, FakeClock()).sample([node.container()])
    assert x.rx_bytes is None and x.tx_bps is None
    assert any("shares the host's network namespace" in m for m in x.missing)


def test_the_state_of_a_container_gone_is_dropped(node: Node) -> None:
    clock = FakeClock()
    s = _sampler(node, clock)
    s.sample([node.container()])
    assert s.sample([]) == []
    clock.advance(1.0)
    [again] = s.sample([node.container()])
    assert again.cpu_cores is None  # a first sample again


#: a process that waits for a line on stdin (so it is moved into the cgroups first), then allocates
#: 16 MiB (charged to them) and burns CPU
_BURNER = "import sys; sys.stdin.readline(); b = bytearray(16 << 20); b[::4096] = b'x' * len(b[::4096])\nwhile True: pass"


@pytest.mark.root
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_a_process_in_real_cgroups_is_sampled_from_their_files(
    real_cgroup: Callable[[], RealCgroup], busy: bool
) -> None:
    cg = real_cgroup()
    p = subprocess.Popen([sys.executable, "-c", _BURNER], stdin=subprocess.PIPE)
    try:
        cg.add(p.pid)
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.flush()
        c = cg.container((p.pid,))
        s = Sampler()
        with busy_cores() if busy else _nothing():
            time.sleep(0.5)
            s.sample([c])
            time.sleep(1.0)
            [x] = s.sample([c])
    finally:
        p.kill()
        p.wait()
        if p.stdin is not None:
            p.stdin.close()
    files = s.files(c)
    # where each counter came from: cgroup2 for CPU when it is mounted; memory and pids from the
    # v1 hierarchies on a hybrid node like this one, from cgroup2 on a pure one
    assert files.cpu is not None and files.cpu[1] == ("v2" if cg.v2 else "v1")
    if "memory" in cg.v1:
        assert files.memory == (cg.v1["memory"], "v1")
    assert x.cpu_cores is not None and 0.05 < x.cpu_cores < 1.5, x
    assert x.memory_bytes is not None and x.memory_bytes >= 16 << 20, x
    assert x.pids == 1 and x.open_files is not None and x.open_files >= 3
    assert x.rx_bytes is None  # the host's network namespace
    assert all(not m.startswith(("cpu", "memory:", "pids:")) for m in x.missing), x.missing


@pytest.mark.root
def test_v1_only_and_v2_only_views_of_the_same_real_cgroup(real_cgroup: Callable[[], RealCgroup]) -> None:
    """The same process read as a pure cgroup2 node would (no v1 hierarchies) and as a v1 node would
    (no cgroup2 directory): each says what it cannot read and reads the rest."""
    cg = real_cgroup()
    p = subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"])
    try:
        cg.add(p.pid)
        time.sleep(0.3)  # some CPU time in these cgroups
        v2_only = Sampler(hierarchies={}).sample([cg.container((p.pid,))])[0]
        v1 = cgroup_v1_hierarchies()
        c1 = cg.container((p.pid,))
        v1_files = locate("/nonexistent", p.pid, v1)
        v1_only = Sampler(hierarchies=v1).sample(
            [type(c1)(c1.full_id, "unknown", "/nonexistent", 0, (p.pid,))]
        )[0]
    finally:
        p.kill()
        p.wait()
    if cg.v2 is not None:
        assert v2_only.cpu_usage_ns is not None and v2_only.cpu_usage_ns > 0
    if cg.v1:  # a hybrid node: the v1 controllers are not in cgroup2
        assert v2_only.memory_bytes is None and v2_only.pids == 1
        assert any(m.startswith("memory: no memory controller") for m in v2_only.missing)
        assert v1_files.cpu == (cg.v1["cpuacct"], "v1")
        assert v1_only.cpu_usage_ns is not None and v1_only.cpu_usage_ns > 0
        assert v1_only.pids == 1 and v1_only.memory_bytes is not None


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
