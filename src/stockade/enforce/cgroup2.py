"""The cgroup2 hierarchy as the enforcers use it: a process's directory, checks, ids (where it is
mounted: :func:`stockade.sensor.containers.discover.cgroup2_mount`).

On this machine kind (cgroup v1 controllers plus a cgroup2 hierarchy at
``/sys/fs/cgroup/unified``, where runc and podman give each container its own directory) cgroup BPF
programs and ``cgroup.kill`` work only on the cgroup2 directory: attaching to a v1 directory fails
with EBADF. A process's cgroup2 directory is its ``0::`` line in ``/proc/<pid>/cgroup`` under the
cgroup2 mount point; a cgroup's id (what ``bpf_get_current_cgroup_id()`` returns) is the inode
number of its directory.
"""

from __future__ import annotations

import os

from stockade.enforce.interface import EnforceError
from stockade.sensor.containers.discover import cgroup2_mount
from stockade.sensor.procfs import read_cgroups

__all__ = ["cgroup_dir_of", "cgroup_id", "check_cgroup2_dir"]


def cgroup_dir_of(pid: int) -> str:
    """The cgroup2 directory of process `pid` (its ``0::`` line under the cgroup2 mount)."""
    root = cgroup2_mount()
    if root is None:
        raise EnforceError("no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
    rel = read_cgroups(pid).get("")
    if rel is None:
        raise EnforceError(f"process {pid}: no cgroup2 line in /proc/{pid}/cgroup (gone?)")
    return os.path.normpath(root + rel) if rel != "/" else root


def check_cgroup2_dir(path: str) -> str:
    """`path`, normalised, when it is a directory of the cgroup2 hierarchy; else EnforceError."""
    path = os.path.normpath(path)
    root = cgroup2_mount()
    if root is None or not (path == root or path.startswith(root.rstrip("/") + "/")):
        raise EnforceError(
            f"{path} is not in a cgroup2 hierarchy (mounted at: {root or 'nowhere'}): "
            "cgroup BPF programs attach only there"
        )
    if not os.path.isfile(os.path.join(path, "cgroup.procs")):
        raise EnforceError(f"{path} is not a cgroup directory (no cgroup.procs)")
    return path


def cgroup_id(path: str) -> int:
    """The id of the cgroup2 directory `path` (its inode number), as BPF programs see it."""
    try:
        return os.stat(path).st_ino
    except OSError as e:
        raise EnforceError(f"cgroup {path}: {e.strerror}") from e
