"""Container ids from cgroup paths, for every runtime's path shape (cgroup v1 and v2).

``parse_cgroup_path("/machine.slice/libpod-<64 hex>.scope")`` gives ``CgroupMatch("podman", id)``.
Shapes recognised (one path component at a time, the deepest first):

* podman: ``libpod-<id>`` (``/libpod_parent/libpod-<id>``, ``/machine.slice/libpod-<id>.scope``);
  ``libpod-conmon-<id>`` is podman's monitor, a host process;
* docker: ``/docker/<id>``, ``/system.slice/docker-<id>.scope``;
* containerd (CRI): ``cri-containerd-<id>.scope``, ``/kubepods/.../pod<uid>/<id>``;
* CRI-O: ``crio-<id>.scope`` (``crio-conmon-<id>`` is its monitor);
* any other component of exactly 64 hex digits is a container of an unknown runtime (``cri``
  under ``kubepods``); runc containers with a chosen cgroupsPath (``/<name>``) are not recognisable
  from the path alone: :mod:`stockade.sensor.containers.runc` matches them against runc's state.

A process's *cgroup2 id* (:func:`cgroup2_id`) is what eBPF's ``bpf_get_current_cgroup_id()`` returns
for it: the inode number of its directory in the cgroup2 hierarchy (on a hybrid machine the one
mounted at /sys/fs/cgroup/unified, where runc and podman give each container its own directory). The
eBPF sensor's learning is keyed by it (``EbpfBackend.set_watched``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = [
    "CgroupMatch",
    "cgroup2_dir",
    "cgroup2_hierarchy",
    "cgroup2_id",
    "cgroup2_path",
    "cgroup_v1_hierarchies",
    "mounted_dir",
    "parse_cgroup_path",
]

_HEX64 = r"[0-9a-f]{64}"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^libpod-({_HEX64})(?:\.scope)?$"), "podman"),
    (re.compile(rf"^docker-({_HEX64})(?:\.scope)?$"), "docker"),
    (re.compile(rf"^cri-containerd-({_HEX64})(?:\.scope)?$"), "containerd"),
    (re.compile(rf"^crio-({_HEX64})(?:\.scope)?$"), "cri-o"),
    (re.compile(rf"^containerd-({_HEX64})(?:\.scope)?$"), "containerd"),
)
_MONITOR = re.compile(rf"^(?:libpod-conmon|crio-conmon)-{_HEX64}(?:\.scope)?$")
_BARE = re.compile(rf"^({_HEX64})$")
#: "pod<uid>" (cgroupfs) or "kubepods-besteffort-pod<uid with _>.slice" (systemd)
_POD = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$"
)


@dataclass(frozen=True, slots=True)
class CgroupMatch:
    """What a cgroup path says: the runtime (``podman``, ``docker``, ``containerd``, ``cri-o``,
    ``cri`` for a kubepods container of an unknown runtime, ``unknown``) and the full id."""

    runtime: str
    container_id: str
    #: the Kubernetes pod uid, when the path is under kubepods
    pod_uid: str | None = None


def parse_cgroup_path(path: str | None) -> CgroupMatch | None:
    """The container a cgroup path names, or None (a host cgroup, or a shape not recognised)."""
    if not path or path == "/":
        return None
    parts = [p for p in path.split("/") if p]
    pod_uid = None
    kube = False
    for p in parts:
        if p.startswith("kubepods"):
            kube = True
        m = _POD.search(p)
        if m is not None and kube:
            pod_uid = m.group(1).replace("_", "-")
    for i in range(len(parts) - 1, -1, -1):
        comp = parts[i]
        if _MONITOR.match(comp):
            return None
        for pat, runtime in _PATTERNS:
            m = pat.match(comp)
            if m is not None:
                return CgroupMatch(runtime, m.group(1), pod_uid)
        m = _BARE.match(comp)
        if m is not None:
            if i > 0 and parts[i - 1] == "docker":
                runtime = "docker"
            elif kube:
                runtime = "cri"
            else:
                runtime = "unknown"
            return CgroupMatch(runtime, m.group(1), pod_uid)
    return None


# -- the cgroup2 hierarchy ---------------------------------------------------------------------

_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (``\\040`` for a space) decoded."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def cgroup2_hierarchy(mountinfo: str = "/proc/self/mountinfo") -> tuple[str, str] | None:
    """Where the cgroup2 hierarchy is mounted: (mount point, the hierarchy's directory mounted there),
    from `mountinfo`; None when it is not mounted (or cannot be read)."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                left, sep, right = line.partition(" - ")
                fields = left.split()
                if sep and right.split(" ", 1)[0] == "cgroup2" and len(fields) >= 5:
                    return _unescape(fields[4]), _unescape(fields[3])
    except OSError:
        return None
    return None


#: super options of a cgroup v1 mount that are not controllers
_V1_OPTIONS = frozenset(
    {"rw", "ro", "noprefix", "xattr", "none", "clone_children", "cpuset_v2_mode", "favordynmods"}
)


def cgroup_v1_hierarchies(mountinfo: str = "/proc/self/mountinfo") -> dict[str, tuple[str, str]]:
    """The cgroup v1 hierarchies mounted here, by controller (``cpuacct``, ``memory``, ``pids``,
    ``name=systemd``, ...): (mount point, the hierarchy's directory mounted there). Empty on a pure
    cgroup2 node (or when `mountinfo` cannot be read)."""
    out: dict[str, tuple[str, str]] = {}
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                left, sep, right = line.partition(" - ")
                fields = left.split()
                tail = right.split()
                if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] != "cgroup":
                    continue
                where = (_unescape(fields[4]), _unescape(fields[3]))
                for opt in tail[2].split(","):
                    if opt not in _V1_OPTIONS and not opt.startswith("release_agent="):
                        out.setdefault(opt, where)
    except OSError:
        return {}
    return out


def cgroup2_path(pid: int | str = "self", proc: str = "/proc") -> str | None:
    """Process `pid`'s cgroup in the cgroup2 hierarchy: the path of the ``0::`` line of its
    /proc/<pid>/cgroup; None when it has none or is gone."""
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].rstrip("\n")
    except OSError:
        return None
    return None


def cgroup2_dir(
    pid: int | str = "self", mountinfo: str = "/proc/self/mountinfo", proc: str = "/proc"
) -> str | None:
    """The directory of process `pid`'s cgroup2 cgroup, below the hierarchy's mount point; None when
    the hierarchy is not mounted, the process is gone, or its cgroup is not visible from the mount."""
    mount = cgroup2_hierarchy(mountinfo)
    path = cgroup2_path(pid, proc)
    if mount is None or path is None:
        return None
    return mounted_dir(mount, path)


def mounted_dir(mount: tuple[str, str], path: str) -> str | None:
    """The directory of cgroup `path` (as /proc/<pid>/cgroup names it) in a hierarchy mounted as
    `mount` (mount point, the hierarchy's directory mounted there); None when that mount does not
    show it."""
    point, root = mount
    root = root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        return None
    rel = path[len(root) :]
    return os.path.normpath(point + rel) if rel not in ("", "/") else point


def cgroup2_id(
    pid: int | str = "self", mountinfo: str = "/proc/self/mountinfo", proc: str = "/proc"
) -> int | None:
    """Process `pid`'s cgroup2 id, as ``bpf_get_current_cgroup_id()`` gives it in the kernel (the
    inode number of its cgroup2 directory); None when it cannot be known (see :func:`cgroup2_dir`)."""
    d = cgroup2_dir(pid, mountinfo, proc)
    if d is None:
        return None
    try:
        return os.stat(d).st_ino
    except OSError:
        return None
