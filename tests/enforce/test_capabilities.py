"""The node capability report: every mechanism really tried, nothing left behind.

As root (this machine kind: fanotify permission events, cgroup BPF, bpf_send_signal, cgroup.kill,
seccomp work; BPF-LSM does not) with both cores busy; without root (the effective uid dropped for
the call) every operation is ``none``; and how operations follow from mechanisms.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator

import pytest

from helpers import busy_cores
from stockade.enforce.capabilities import OPS, Mechanism, _ops, probe
from stockade.sensor.containers.discover import cgroup2_mount


@pytest.fixture(name="busy_cores")
def _busy_cores() -> Iterator[None]:
    with busy_cores():
        yield


def _traces() -> tuple[list[str], list[str], list[str]]:
    """What a probe could leave behind: mounts, cgroup2 directories, temporary directories."""
    with open("/proc/self/mounts", encoding="utf-8") as f:
        mounts = sorted(f.read().splitlines())
    root = cgroup2_mount() or "/nonexistent"
    cgroups = sorted(d for d in os.listdir(root) if "stockade-probe" in d) if os.path.isdir(root) else []
    return mounts, cgroups, sorted(glob.glob("/tmp/stockade-probe-*"))


@pytest.mark.root
@pytest.mark.usefixtures("busy_cores")
def test_the_report_of_this_node_is_what_was_measured_here() -> None:
    before = _traces()
    caps = probe()
    assert _traces() == before
    m = caps.mechanisms
    for name in ("fanotify_open", "fanotify_exec", "cgroup_bpf", "cgroup_kill", "bpf_send_signal", "seccomp"):
        assert m[name].available, (name, m[name].reason)
    assert not m["bpf_lsm"].available and "EPERM" in m["bpf_lsm"].reason
    assert {op: (s.support, s.mechanism) for op, s in caps.ops.items()} == {
        "exec": ("block", "fanotify_exec"),
        "open": ("block", "fanotify_open"),
        "connect": ("block", "cgroup_bpf"),
        "bind": ("block", "cgroup_bpf"),
        "raw_socket": ("block", "cgroup_bpf"),
        "kill": ("block", "cgroup_kill"),
    }
    assert "EPERM" in caps.ops["connect"].reason and "AF_PACKET" in caps.ops["raw_socket"].reason
    d = json.loads(json.dumps(caps.to_dict()))
    assert set(d["ops"]) == set(OPS) and d["ops"]["exec"]["support"] == "block"
    assert d["mechanisms"]["bpf_lsm"]["available"] is False
    print(f"probe took {caps.elapsed_s * 1000:.0f} ms with both cores busy")


def test_without_root_nothing_is_claimed() -> None:
    was_root = os.geteuid() == 0
    if was_root:
        os.seteuid(65534)
    try:
        caps = probe()
    finally:
        if was_root:
            os.seteuid(0)
    assert {op: (s.support, s.reason) for op, s in caps.ops.items()} == {
        op: ("none", "needs root") for op in OPS
    }
    assert caps.mechanisms == {}


def test_what_each_operation_falls_back_to() -> None:
    works = Mechanism(True, "seen")
    broken = Mechanism(False, "refused: EPERM")
    m = {
        "fanotify_open": works,
        "fanotify_exec": broken,
        "cgroup_bpf": broken,
        "cgroup_kill": broken,
        "bpf_send_signal": works,
        "seccomp": works,
        "bpf_lsm": broken,
    }
    ops = _ops(m)
    # no fanotify exec permission events: the exec killer's SIGKILL at exec
    assert (ops["open"].support, ops["exec"].support, ops["exec"].mechanism) == (
        "block",
        "block",
        "bpf_send_signal",
    )
    assert "no EPERM" in ops["exec"].reason
    ops = _ops({**m, "bpf_send_signal": broken})
    assert ops["exec"].support == "audit"
    assert "fanotify_exec unavailable: refused: EPERM" in ops["exec"].reason
    assert {ops[o].support for o in ("connect", "bind", "raw_socket")} == {"audit"}
    assert (ops["kill"].support, ops["kill"].mechanism) == ("block", "sigkill")
