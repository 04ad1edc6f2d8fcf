"""Drift: was an executed file written into the container after it started (proc.is_exe_upper_layer)?

Two methods, chosen by the container's root filesystem:

* ``overlay``: the root is an overlay mount (podman, containerd, CRI-O, docker). The executable is
  on the upper (writable) layer when the path exists in ``upperdir`` (the mount's option, read from
  the runtime's metadata or ``/proc/<pid>/mountinfo``). That is Falco's definition: a file copied in,
  downloaded or modified after start, as opposed to one from the image's lower layers.
* ``mtime``: the root is a plain directory (runc with a bundle's ``rootfs``). The executable is drift
  when its mtime or ctime is later than the container's start.

Each answer says which method gave it (``DriftResult.method``); ``None`` means it could not be told
(unknown container start, file gone, no exe path).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from stockade.sensor.containers.info import ContainerInfo

__all__ = ["DriftResult", "exe_upper_layer", "root_mount"]


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Whether a process's executable is on the container's writable layer, and how that was decided."""

    upper: bool | None
    #: "overlay", "mtime", or "unknown"
    method: str
    reason: str = ""


def root_mount(pid: int) -> tuple[str, dict[str, str]] | None:
    """(fstype, super options) of the mount at ``/`` in the process's mount namespace."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    found: tuple[str, dict[str, str]] | None = None
    for line in lines:
        pre, sep, post = line.partition(" - ")
        parts = pre.split(" ")
        if not sep or len(parts) < 5 or parts[4] != "/":
            continue
        fields = post.split(" ")
        opts: dict[str, str] = {}
        if len(fields) >= 3:
            for o in fields[2].split(","):
                k, _, v = o.partition("=")
                opts[k] = v
        found = (fields[0], opts)  # the last mount on / is the one in effect
    return found


def _learn_root(info: ContainerInfo, pid: int | None) -> None:
    if info.root_fstype is not None:
        return
    if info.upperdir:
        info.root_fstype = "overlay"
        return
    for p in (pid, info.init_pid):
        if p is None:
            continue
        rm = root_mount(p)
        if rm is None:
            continue
        info.root_fstype = rm[0]
        if rm[0] == "overlay" and rm[1].get("upperdir"):
            info.upperdir = rm[1]["upperdir"]
        return


def exe_upper_layer(info: ContainerInfo, exepath: str | None, pid: int | None = None) -> DriftResult:
    """Is `exepath` (a path inside the container) drift? See the module's docstring."""
    if not exepath or not exepath.startswith("/"):
        return DriftResult(None, "unknown", "no executable path")
    _learn_root(info, pid)
    rel = exepath.lstrip("/")
    if info.upperdir:
        try:
            st = os.lstat(os.path.join(info.upperdir, rel))
        except OSError:
            return DriftResult(False, "overlay")
        # a character device 0/0 is an overlay whiteout (the file was deleted): not on the upper layer
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return DriftResult(False, "overlay")
        return DriftResult(True, "overlay")
    if info.start_ns is None:
        return DriftResult(None, "unknown", "container start time unknown")
    roots = [f"/proc/{p}/root" for p in (pid, info.init_pid) if p is not None]
    if info.rootfs:
        roots.append(info.rootfs)
    for root in roots:
        try:
            st = os.stat(os.path.join(root, rel))
        except OSError:
            continue
        return DriftResult(max(st.st_mtime_ns, st.st_ctime_ns) > info.start_ns, "mtime")
    return DriftResult(None, "unknown", "executable not found")
