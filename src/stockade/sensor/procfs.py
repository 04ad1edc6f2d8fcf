"""Robust readers of /proc/<pid>/... for the fallback sensors.

Every reader returns ``None`` (or an empty result) when the process is gone, the file is
unreadable, or its content is not what the kernel usually writes: a short-lived process may exit
between the kernel event and the read, and what was read before that is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROC",
    "ProcInfo",
    "boot_epoch_ns",
    "dir_path",
    "monotonic_epoch_offset_ns",
    "read_cgroup_path",
    "read_cgroups",
    "read_cmdline",
    "read_cmdline_raw",
    "read_cwd",
    "read_exe",
    "read_loginuid",
    "read_mntns",
    "read_netns",
    "read_placement",
    "read_stat",
    "read_status",
    "snapshot",
    "socket_inode_owners",
    "start_time_ns",
]

PROC = "/proc"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_UNSET_LOGINUID = 4294967295
#: cgroup v1 controllers whose path names the container best, most useful first
_CGROUP_PREFERENCE = ("pids", "memory", "cpu,cpuacct", "cpu", "devices", "freezer", "name=systemd")


def boot_epoch_ns() -> int:
    """The wall-clock time of boot (ns since the epoch), from CLOCK_BOOTTIME."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def monotonic_epoch_offset_ns() -> int:
    """What to add to a CLOCK_MONOTONIC timestamp (ktime_get_ns) to get ns since the epoch."""
    return time.time_ns() - time.monotonic_ns()


def _read_bytes(path: str, limit: int = 65536) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        # small reads first: os.read allocates its whole buffer, and most /proc files are short
        data = os.read(fd, min(limit, 4096))
        if len(data) < 4096 or len(data) >= limit:
            return data
        chunks = [data]
        got = len(data)
        while got < limit:
            more = os.read(fd, min(limit - got, 65536))
            if not more:
                break
            chunks.append(more)
            got += len(more)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def read_stat(pid: int) -> dict[str, Any] | None:
    """/proc/<pid>/stat: ``comm``, ``state``, ``ppid``, ``tty``, ``starttime_ticks`` (since boot)."""
    raw = _read_bytes(f"{PROC}/{pid}/stat", 4096)
    if not raw:
        return None
    # comm may hold spaces and parentheses: it ends at the last ')'
    lpar, rpar = raw.find(b"("), raw.rfind(b")")
    if lpar < 0 or rpar < lpar:
        return None
    rest = raw[rpar + 2 :].split()
    if len(rest) < 20:
        return None
    try:
        return {
            "comm": raw[lpar + 1 : rpar].decode("utf-8", "replace"),
            "state": rest[0].decode("ascii", "replace"),
            "ppid": int(rest[1]),
            "tty": int(rest[4]),
            "starttime_ticks": int(rest[19]),
        }
    except ValueError:
        return None


def read_status(pid: int) -> dict[str, Any] | None:
    """/proc/<pid>/status: ``name``, ``tgid``, ``ppid``, ``uid``/``euid``, ``gid``/``egid``, ``vpid``."""
    raw = _read_bytes(f"{PROC}/{pid}/status", 16384)
    if not raw:
        return None
    out: dict[str, Any] = {}
    for line in raw.split(b"\n"):
        key, _, val = line.partition(b":")
        try:
            if key == b"Name":
                out["name"] = val.strip().decode("utf-8", "replace")
            elif key == b"Tgid":
                out["tgid"] = int(val)
            elif key == b"PPid":
                out["ppid"] = int(val)
            elif key == b"Uid":
                ids = val.split()
                out["uid"], out["euid"] = int(ids[0]), int(ids[1])
            elif key == b"Gid":
                ids = val.split()
                out["gid"], out["egid"] = int(ids[0]), int(ids[1])
            elif key == b"NSpid":
                out["vpid"] = int(val.split()[-1])
        except (ValueError, IndexError):
            continue
    return out or None


def dir_path(path: str) -> str:
    """A directory's path as libsinsp writes proc.cwd: with a trailing "/" ("/" for the root)."""
    return path if path.endswith("/") else path + "/"


def read_cmdline_raw(pid: int, limit: int = 1 << 20) -> bytes | None:
    """The argument area as the kernel keeps it (NUL-separated); ``None`` when gone."""
    return _read_bytes(f"{PROC}/{pid}/cmdline", limit)


def read_cmdline(pid: int) -> list[str] | None:
    """The argument vector; ``None`` when gone, ``[]`` for a kernel thread or a zombie."""
    raw = read_cmdline_raw(pid)
    if raw is None:
        return None
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    if not raw:
        return []
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")]


def _strip_deleted(path: str | None) -> str | None:
    if path is not None and path.endswith(" (deleted)"):
        return path[: -len(" (deleted)")]
    return path


def read_exe(pid: int) -> str | None:
    """The executable's path (without a trailing `` (deleted)``)."""
    return _strip_deleted(_readlink(f"{PROC}/{pid}/exe"))


def read_cwd(pid: int) -> str | None:
    """The process's working directory, or None once it is gone."""
    return _strip_deleted(_readlink(f"{PROC}/{pid}/cwd"))


def read_cgroups(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup as ``{controllers: path}`` (``""`` is the v2 unified hierarchy)."""
    raw = _read_bytes(f"{PROC}/{pid}/cgroup", 65536)
    out: dict[str, str] = {}
    if not raw:
        return out
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def read_cgroup_path(pid: int) -> str | None:
    """The cgroup path that best names the process's container (v1 controller, else v2)."""
    return pick_cgroup_path(read_cgroups(pid))


def pick_cgroup_path(groups: dict[str, str]) -> str | None:
    if not groups:
        return None
    for ctl in _CGROUP_PREFERENCE:
        if ctl in groups:
            return groups[ctl]
    if "" in groups:
        return groups[""]
    return next(iter(groups.values()))


def read_placement(pid: int) -> tuple[str | None, int | None]:
    """(cgroup path, mount namespace) of a live process, or (None, None).

    An exited process (a zombie not yet reaped) still has a /proc entry, but its cgroup reads as
    the hierarchy's root ("/": the host's) and its namespaces are gone: the cgroup counts only when
    the mount namespace, read after it, shows the process was still alive."""
    cg = read_cgroup_path(pid)
    mntns = read_mntns(pid)
    return (cg, mntns) if mntns is not None else (None, None)


def read_mntns(pid: int) -> int | None:
    """The mount namespace inode number."""
    try:
        return os.stat(f"{PROC}/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def read_netns(pid: int | str, proc: str = PROC) -> int | None:
    """The network namespace inode number of process `pid` (``self``: this one); None when gone
    or not readable."""
    try:
        return os.stat(f"{proc}/{pid}/ns/net").st_ino
    except OSError:
        return None


def read_loginuid(pid: int) -> int | None:
    """The audit login uid; -1 when unset (4294967295), as Falco writes it."""
    raw = _read_bytes(f"{PROC}/{pid}/loginuid", 64)
    if not raw:
        return None
    try:
        val = int(raw)
    except ValueError:
        return None
    return -1 if val == _UNSET_LOGINUID else val


@dataclass(slots=True)
class ProcInfo:
    """What could be read of one process; every attribute may be missing (None)."""

    pid: int
    ppid: int | None = None
    comm: str | None = None
    exe: str | None = None
    args: list[str] | None = None
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    vpid: int | None = None
    tty: int | None = None
    loginuid: int | None = None
    cgroup_path: str | None = None
    mntns: int | None = None
    start_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The Falco fields (and private ``_`` keys) this information fills."""
        out: dict[str, Any] = {}
        if self.ppid is not None:
            out["proc.ppid"] = self.ppid
        if self.comm is not None:
            out["proc.name"] = self.comm
        elif self.args:  # gone before its stat was read: the kernel's comm is argv[0]'s name
            out["proc.name"] = os.path.basename(self.args[0])[:15]
        if self.exe:
            out["proc.exepath"] = self.exe
        if self.args:
            out["proc.exe"] = self.args[0]
            out["proc.args"] = " ".join(self.args[1:])
            name = self.comm if self.comm is not None else os.path.basename(self.args[0])
            out["proc.cmdline"] = " ".join([name, *self.args[1:]])
        if self.cwd is not None:
            out["proc.cwd"] = dir_path(self.cwd)
        for attr, key in _AS_IS:
            v = getattr(self, attr)
            if v is not None:
                out[key] = v
        return out


#: ProcInfo attribute -> the field it fills as it is
_AS_IS = (
    ("uid", "user.uid"),
    ("gid", "group.gid"),
    ("vpid", "proc.vpid"),
    ("tty", "proc.tty"),
    ("loginuid", "user.loginuid"),
    ("cgroup_path", "_cgroup_path"),
    ("mntns", "_mntns"),
    ("start_ns", "_start_ns"),
)


def start_time_ns(pid: int, boot_ns: int | None = None) -> int | None:
    """When `pid` started (ns since the epoch), None when it is gone."""
    st = read_stat(pid)
    if st is None:
        return None
    base = boot_epoch_ns() if boot_ns is None else boot_ns
    return int(base + st["starttime_ticks"] * (1_000_000_000 // _CLK_TCK))


def snapshot(pid: int, boot_ns: int | None = None, *, full: bool = True) -> ProcInfo:
    """Read everything readable about `pid` now. `full=False` skips cwd, cgroup, mntns, loginuid.

    A short-lived process may exit while it is read: what matters most is read first (its command
    line and executable, then its cgroup and mount namespace, which name its container)."""
    info = ProcInfo(pid=pid)
    info.args = read_cmdline(pid)
    info.exe = read_exe(pid)
    if full:
        info.cgroup_path, info.mntns = read_placement(pid)
        info.cwd = read_cwd(pid)
    st = read_stat(pid)
    if st is not None:
        info.ppid = st["ppid"]
        info.comm = st["comm"]
        info.tty = st["tty"]
        base = boot_epoch_ns() if boot_ns is None else boot_ns
        info.start_ns = base + st["starttime_ticks"] * (1_000_000_000 // _CLK_TCK)
    status = read_status(pid)
    if status is not None:
        # Falco's user.uid / group.gid are the effective ids
        info.uid = status.get("euid")
        info.gid = status.get("egid")
        info.vpid = status.get("vpid")
        if info.ppid is None:
            info.ppid = status.get("ppid")
        if info.comm is None:
            info.comm = status.get("name")
    if full:
        info.loginuid = read_loginuid(pid)
    return info


def socket_inode_owners(inodes: set[int], pids: Iterable[int] | None = None) -> dict[int, int]:
    """Map socket inodes to the pid holding them, by scanning /proc/<pid>/fd of `pids` (default:
    every process; best effort, slow)."""
    found: dict[int, int] = {}
    if not inodes:
        return found
    if pids is None:
        try:
            pids = [int(p) for p in os.listdir(PROC) if p.isdigit()]
        except OSError:
            return found
    for pid in pids:
        fd_dir = f"{PROC}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            link = _readlink(f"{fd_dir}/{fd}")
            if link is None or not link.startswith("socket:["):
                continue
            try:
                ino = int(link[8:-1])
            except ValueError:
                continue
            if ino in inodes and ino not in found:
                found[ino] = pid
                if len(found) == len(inodes):
                    return found
    return found
