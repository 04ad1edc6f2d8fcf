"""The containers running on this node, found in the cgroup2 hierarchy (whatever started them).

Every runtime Stockade knows (podman, docker, containerd, CRI-O, runc under kubepods) gives each
container its own cgroup; on a hybrid (v1 + v2) node the cgroup2 hierarchy is mounted apart
(``/sys/fs/cgroup/unified`` here). A directory whose path names a container
(:func:`~stockade.sensor.containers.cgroup.parse_cgroup_path`) and holds processes is a running
container: its id, runtime, cgroup2 directory, cgroup id (the directory's inode number, what
``bpf_get_current_cgroup_id()`` returns for its processes) and pids. Nested cgroups a container
makes for itself are folded into it.

:func:`parent_dirs` gives the directories where the runtimes put their containers' cgroups (and
nothing of the host's own services), to watch a container from its first call, before it is
found (``EbpfBackend.set_watched_parents``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from stockade.sensor.containers.cgroup import cgroup2_hierarchy, parse_cgroup_path

__all__ = [
    "CONTAINER_PARENTS",
    "RunningContainer",
    "cgroup2_mount",
    "cgroup_pids",
    "parent_dirs",
    "running_containers",
]

#: the cgroup2 directories (relative to the mount) runtimes make for their containers' cgroups:
#: podman (cgroupfs; systemd: machine.slice), docker (cgroupfs), Kubernetes (cgroupfs and systemd
#: drivers, with the QoS classes below). Never the root, system.slice, user.slice, init.scope.
CONTAINER_PARENTS = (
    "libpod_parent",
    "machine.slice",
    "docker",
    "kubepods",
    "kubepods/burstable",
    "kubepods/besteffort",
    "kubepods.slice",
    "kubepods.slice/kubepods-burstable.slice",
    "kubepods.slice/kubepods-besteffort.slice",
)


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


def _is_parent(rel: str) -> bool:
    """A directory (relative to the mount) below one of :data:`CONTAINER_PARENTS` or one of them,
    not a container's own."""
    parts = [p for p in rel.split("/") if p]
    if not parts or parts[0] not in {p.split("/")[0] for p in CONTAINER_PARENTS}:
        return False
    return parse_cgroup_path(rel) is None


def parent_dirs(containers: list[RunningContainer], root: str | None = None) -> dict[str, int]:
    """The cgroup2 directories holding container cgroups and nothing of the host's own services,
    with their cgroup ids (inode numbers): those of :data:`CONTAINER_PARENTS` that exist under
    `root` (default: the mount), and the directory of each container of `containers` below one of
    them (a Kubernetes pod's, deeper than the parents' levels an eBPF watch looks at)."""
    base = root or cgroup2_mount()
    if base is None:
        return {}
    base = base.rstrip("/")
    wanted = [os.path.join(base, p) for p in CONTAINER_PARENTS]
    for c in containers:
        up = os.path.dirname(c.cgroup_dir.rstrip("/"))
        if up.startswith(base + "/") and _is_parent(up[len(base) :]):
            wanted.append(up)
    out: dict[str, int] = {}
    for d in wanted:
        try:
            out[d] = os.stat(d).st_ino
        except OSError:
            continue
    return out
