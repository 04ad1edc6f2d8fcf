"""The sampler: one :class:`~stockade.storage.resources.ResourceSample` per running container per
call, from its cgroup (:mod:`stockade.resources.cgroupfs`) and /proc
(:mod:`stockade.resources.procstats`).

Rates are the differences of the cumulative counters over the time since the container's
previous sample (on the clock's monotonic time): ``cpu_cores`` from the CPU time, ``rx_bps`` and
``tx_bps`` from the network bytes. A container's first sample has no rates; a counter that went
back (a namespace replaced) gives none either. Where each counter is read is decided on a
container's first sample and kept; the state of a container that is no longer running is dropped
on the next call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stockade.model.clock import SYSTEM, Clock
from stockade.resources.cgroupfs import CgroupFiles, Hierarchies, locate, read_cgroup
from stockade.resources.procstats import PROC, open_files, read_net
from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies
from stockade.sensor.containers.discover import RunningContainer
from stockade.sensor.procfs import read_netns
from stockade.storage.resources import ResourceSample

__all__ = ["Sampler"]


@dataclass(slots=True)
class _Previous:
    mono: float
    cpu_ns: int | None
    rx: int | None
    tx: int | None


def _rate(now: int | None, before: int | None, seconds: float) -> float | None:
    if now is None or before is None or seconds <= 0 or now < before:
        return None
    return (now - before) / seconds


class Sampler:
    """Samples running containers (module docstring). Not thread-safe: one caller at a time."""

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM,
        mountinfo: str = "/proc/self/mountinfo",
        proc: str = PROC,
        hierarchies: Hierarchies | None = None,
    ) -> None:
        self.clock = clock
        self.proc = proc
        #: the cgroup v1 hierarchies of this node (empty on a pure cgroup2 node)
        self.hierarchies = cgroup_v1_hierarchies(mountinfo) if hierarchies is None else hierarchies
        #: the agent's own network namespace: a container in it shares the host's network
        self.host_netns = read_netns("self", proc)
        self._files: dict[str, CgroupFiles] = {}
        self._previous: dict[str, _Previous] = {}

    def files(self, c: RunningContainer) -> CgroupFiles:
        """Where container `c`'s counters are read (decided on its first sample)."""
        found = self._files.get(c.full_id)
        if found is None:
            found = self._files[c.full_id] = locate(c.cgroup_dir, c.pid, self.hierarchies)
        return found

    def sample(self, containers: Iterable[RunningContainer]) -> list[ResourceSample]:
        """One sample of each container, now; the state of the containers not given is dropped."""
        out = [self._one(c) for c in containers]
        seen = {s.container_id for s in out}
        for cid in [cid for cid in self._previous if cid not in seen]:
            del self._previous[cid]
            self._files.pop(cid, None)
        return out

    def _one(self, c: RunningContainer) -> ResourceSample:
        files = self.files(c)
        problems = list(files.missing)
        mono = self.clock.monotonic()
        time_ns = int(self.clock.time() * 1e9)
        cg = read_cgroup(files, problems)
        fds = open_files(c.pids, problems, self.proc)
        net = read_net(c.pids, self.host_netns, problems, self.proc)
        rx = net.rx_bytes if net is not None else None
        tx = net.tx_bytes if net is not None else None
        prev = self._previous.get(c.full_id)
        self._previous[c.full_id] = _Previous(mono, cg.cpu_usage_ns, rx, tx)
        cpu_cores = rx_bps = tx_bps = None
        if prev is not None:
            dt = mono - prev.mono
            cpu = _rate(cg.cpu_usage_ns, prev.cpu_ns, dt)
            cpu_cores = cpu / 1e9 if cpu is not None else None
            rx_bps = _rate(rx, prev.rx, dt)
            tx_bps = _rate(tx, prev.tx, dt)
        return ResourceSample(
            container_id=c.full_id,
            time_ns=time_ns,
            cpu_cores=cpu_cores,
            cpu_usage_ns=cg.cpu_usage_ns,
            memory_bytes=cg.memory_bytes,
            memory_limit_bytes=cg.memory_limit_bytes,
            pids=cg.pids if cg.pids is not None else len(c.pids),
            pids_limit=cg.pids_limit,
            open_files=fds,
            rx_bytes=rx,
            tx_bytes=tx,
            rx_packets=net.rx_packets if net is not None else None,
            tx_packets=net.tx_packets if net is not None else None,
            rx_bps=rx_bps,
            tx_bps=tx_bps,
            missing=tuple(problems),
        )
