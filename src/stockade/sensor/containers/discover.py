"""The containers running on this node, found in the cgroup2 hierarchy (whatever started them).

Every runtime Stockade knows (podman, docker, containerd, CRI-O, runc under kubepods) gives each
container its own cgroup; on a hybrid (v1 + v2) node the cgroup2 hierarchy is mounted apart
(``/sys/fs/cgroup/unified`` here). A directory whose path names a container
(:func:`~stockade.sensor.containers.cgroup.parse_cgroup_path`) and holds processes is a running
container: its id, runtime, cgroup2 directory, cgroup id (the directory's inode number, what
``bpf_get_current_cgroup_id()`` returns for its processes) and pids. Nested cgroups a container
makes for itself are folded into it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from stockade.sensor.containers.cgroup import cgroup2_hierarchy, parse_cgroup_path

__all__ = ["RunningContainer", "cgroup2_mount", "cgroup_pids", "running_containers"]


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """A running container as the cgroup2 hierarchy shows it."""

    full_id: str
    runtime: str
    #: the container's cgroup2 directory on the host
    cgroup_dir: str
    #: the directory's inode number: the cgroup id BPF programs see
    cgroup_id: int
    #: processes in it (its own directory and the ones below), lowest first
    pids: tuple[int, ...]

    @property
    def pid(self) -> int:
        """A process in the container (the oldest pid: usually its init)."""
        return self.pids[0]


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """Where the cgroup2 hierarchy is mounted (``/sys/fs/cgroup`` or ``/sys/fs/cgroup/unified``)."""
    hierarchy = cgroup2_hierarchy(mountinfo)
    return hierarchy[0] if hierarchy is not None else None


def _pids(directory: str) -> list[int]:
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def cgroup_pids(directory: str) -> list[int]:
    """The pids of a cgroup directory and every directory below it."""
    out = _pids(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return out
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            out += cgroup_pids(e.path)
    return out


def running_containers(root: str | None = None) -> list[RunningContainer]:
    """Every container with processes under the cgroup2 hierarchy `root` (default: its mount)."""
    base = root or cgroup2_mount()
    if base is None:
        return []
    found: list[RunningContainer] = []
    stack = [base]
    while stack:
        d = stack.pop()
        m = parse_cgroup_path(d[len(base) :] or "/")
        if m is not None:
            pids = sorted(cgroup_pids(d))
            if pids:
                try:
                    ino = os.stat(d).st_ino
                except OSError:
                    continue
                found.append(RunningContainer(m.container_id, m.runtime, d, ino, tuple(pids)))
            continue
        try:
            stack += [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
    return found
