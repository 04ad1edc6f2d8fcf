"""Freezing and thawing a real podman container running a busy loop, with both cores busy: frozen
it makes no CPU progress (its cgroup's CPU time stands still over a second), thawed it runs again;
by the v1 freezer (what podman pause uses here: runc then reports it paused) and by cgroup.freeze;
and `frozen()` leaves a container someone else paused as it found it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from containers import PodmanContainer, PodmanFactory
from helpers import busy_cores
from stockade.enforce.cgroup2 import cgroup_dir_of
from stockade.enforce.freeze import freeze, freezer_v1_dir, frozen, is_frozen, thaw
from stockade.enforce.interface import EnforceError

pytestmark = [pytest.mark.root, pytest.mark.containers]


@dataclass
class Busy:
    c: PodmanContainer
    cgroup: str

    def cpu_usec(self) -> int:
        """The container's CPU time so far (cgroup2 cpu.stat usage_usec)."""
        with open(os.path.join(self.cgroup, "cpu.stat"), encoding="ascii") as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v)
        raise AssertionError("no usage_usec in cpu.stat")

    def progress(self, seconds: float) -> int:
        """CPU microseconds used over `seconds`."""
        before = self.cpu_usec()
        time.sleep(seconds)
        return self.cpu_usec() - before


@pytest.fixture(scope="module")
def busy(module_podman_container: PodmanFactory) -> Iterator[Busy]:
    with busy_cores():
        c = module_podman_container(("sh", "-c", "while :; do :; done"))
        yield Busy(c, cgroup_dir_of(c.pid))


@pytest.mark.parametrize("method", ["v1", "v2"])
def test_a_frozen_container_makes_no_cpu_progress_and_resumes_when_thawed(busy: Busy, method: str) -> None:
    assert busy.progress(0.3) > 30_000  # running: a share of a busy node's cores
    res = freeze(busy.cgroup, method=method)  # type: ignore[arg-type]
    try:
        assert (res.method, res.done, res.already) == (method, True, False) and res.pids >= 1
        assert is_frozen(busy.cgroup)
        frozen_usec = busy.progress(1.0)
        print(f"{method}: frozen in {res.elapsed_s * 1000:.1f} ms; CPU over 1 s frozen: {frozen_usec} us")
        assert frozen_usec < 2_000
        if method == "v1":  # runc sees what podman pause would have done
            state = subprocess.run(["runc", "state", busy.c.id], capture_output=True, text=True).stdout
            assert '"status": "paused"' in state
    finally:
        t = thaw(busy.cgroup, method=method)  # type: ignore[arg-type]
    assert t.done and not is_frozen(busy.cgroup)
    assert busy.progress(0.5) > 50_000


def test_the_default_is_the_runtimes_freezer_and_frozen_leaves_a_paused_container_paused(busy: Busy) -> None:
    assert freezer_v1_dir(busy.cgroup) is not None
    with frozen(busy.cgroup) as held:
        assert held and is_frozen(busy.cgroup)
        assert busy.progress(0.3) < 1_000
    assert not is_frozen(busy.cgroup) and busy.progress(0.3) > 20_000
    # paused by podman: frozen() finds it frozen and leaves it so; podman can unpause it
    assert subprocess.run(["podman", "pause", busy.c.name], capture_output=True).returncode == 0
    try:
        with frozen(busy.cgroup) as held:
            assert held
        assert is_frozen(busy.cgroup)
    finally:
        r = subprocess.run(["podman", "unpause", busy.c.name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not is_frozen(busy.cgroup)


def test_bad_input_is_refused_with_the_reason(busy: Busy) -> None:
    with pytest.raises(EnforceError, match="not in a cgroup2 hierarchy"):
        freeze("/sys/fs/cgroup/freezer")
    with pytest.raises(EnforceError, match="unknown freeze method"):
        freeze(busy.cgroup, method="v3")  # type: ignore[arg-type]
    assert not is_frozen(busy.cgroup)
