"""The cgroup2 hierarchy as the enforcers use it: where it is, a process's directory, ids.

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
from stockade.sensor.procfs import read_cgroups

__all__ = ["cgroup_dir_of", "cgroup_id", "check_cgroup2_dir", "unified_root"]

#: where the cgroup2 hierarchy is mounted, most likely first
_CANDIDATES = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def _cgroup2_mounts() -> list[str]:
    """The mount points of cgroup2 hierarchies, from /proc/self/mounts."""
    out: list[str] = []
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "cgroup2":
                    out.append(parts[1])
    except OSError:
        pass
    return out


def unified_root() -> str | None:
    """The cgroup2 mount point (``/sys/fs/cgroup/unified`` on a hybrid host), or None."""
    mounts = _cgroup2_mounts()
    for cand in _CANDIDATES:
        if cand in mounts:
            return cand
    return mounts[0] if mounts else None


def cgroup_dir_of(pid: int) -> str:
    """The cgroup2 directory of process `pid` (its ``0::`` line under the cgroup2 mount)."""
    root = unified_root()
    if root is None:
        raise EnforceError("no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
    rel = read_cgroups(pid).get("")
    if rel is None:
        raise EnforceError(f"process {pid}: no cgroup2 line in /proc/{pid}/cgroup (gone?)")
    return os.path.normpath(root + rel) if rel != "/" else root


def check_cgroup2_dir(path: str) -> str:
    """`path`, normalised, when it is a directory of the cgroup2 hierarchy; else EnforceError."""
    path = os.path.normpath(path)
    mounts = _cgroup2_mounts()
    if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
        raise EnforceError(
            f"{path} is not in a cgroup2 hierarchy (mounted: {', '.join(mounts) or 'none'}): "
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
