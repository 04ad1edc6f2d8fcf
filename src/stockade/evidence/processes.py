"""Process evidence read from /proc: identity, command line, environment, cwd, executable and its
SHA-256 (read through ``/proc/PID/exe``, so a deleted or replaced binary is still hashed), open files
and sockets (``/proc/PID/fd`` and ``fdinfo``), namespaces and cgroups.

Nothing is written to the process: everything is read from /proc. :func:`process_facts` gives the
summary (environment and command line with secrets redacted, :mod:`stockade.evidence.redact`) and
the raw bytes of ``environ`` and ``cmdline`` for the sealed raw copy.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from stockade.evidence.redact import redact_args, redact_env
from stockade.sensor.procfs import read_cgroups, read_cmdline, read_cwd, read_exe, read_stat, read_status

__all__ = ["ExeHasher", "ProcessEvidence", "parse_environ", "process_facts", "process_tree_text", "read_fds"]

_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
_O_NOATIME = getattr(os, "O_NOATIME", 0)


@dataclass(slots=True)
class ProcessEvidence:
    """One process: the summary (redacted) and the raw bytes kept apart."""

    pid: int
    summary: dict[str, Any]
    environ_raw: bytes | None = None
    cmdline_raw: bytes | None = None
    #: socket inodes the process holds (for the network's owners)
    sockets: list[int] = field(default_factory=list)


class ExeHasher:
    """SHA-256 of executables through /proc/PID/exe, each file (device, inode) hashed once."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, int], tuple[str, int]] = {}

    def hash(self, pid: int) -> tuple[str, int] | str:
        """(sha256, size), or why it could not be read."""
        path = f"/proc/{pid}/exe"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _O_NOATIME)
        except PermissionError:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                return f"cannot open {path}: {e.strerror}"
        except OSError as e:
            return f"cannot open {path}: {e.strerror}"
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            key = (st.st_dev, st.st_ino)
            if key in self._done:
                return self._done[key]
            h = hashlib.sha256()
            n = 0
            while chunk := f.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
        self._done[key] = (h.hexdigest(), n)
        return self._done[key]


def _read(path: str, limit: int = 1 << 20) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def parse_environ(raw: bytes) -> dict[str, str]:
    """``/proc/PID/environ`` (NUL-separated ``KEY=value``) as a dict."""
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if not item:
            continue
        k, _, v = item.partition(b"=")
        out[k.decode("utf-8", "surrogateescape")] = v.decode("utf-8", "replace")
    return out


def _fdinfo(pid: int, fd: str) -> dict[str, Any]:
    raw = _read(f"/proc/{pid}/fdinfo/{fd}", 65536)
    out: dict[str, Any] = {}
    for line in (raw or b"").decode("utf-8", "replace").splitlines():
        k, _, v = line.partition(":")
        v = v.strip()
        if k == "pos":
            out["pos"] = int(v) if v.isdigit() else v
        elif k == "flags":
            out["flags"] = v
        elif k == "mnt_id":
            out["mnt_id"] = int(v) if v.isdigit() else v
    return out


def read_fds(pid: int) -> tuple[list[dict[str, Any]], list[int]]:
    """The open file descriptors of a process (number, target, fdinfo) and its socket inodes."""
    d = f"/proc/{pid}/fd"
    try:
        names = sorted(os.listdir(d), key=lambda x: int(x) if x.isdigit() else -1)
    except OSError:
        return [], []
    fds: list[dict[str, Any]] = []
    sockets: list[int] = []
    for name in names:
        try:
            target = os.readlink(f"{d}/{name}")
        except OSError:
            continue  # closed meanwhile
        entry: dict[str, Any] = {"fd": int(name), "target": target, **_fdinfo(pid, name)}
        if target.startswith("socket:[") and target.endswith("]"):
            entry["kind"] = "socket"
            ino = int(target[8:-1]) if target[8:-1].isdigit() else None
            if ino is not None:
                entry["inode"] = ino
                sockets.append(ino)
        elif target.startswith("pipe:["):
            entry["kind"] = "pipe"
        elif target.startswith("anon_inode:"):
            entry["kind"] = "anon_inode"
        else:
            entry["kind"] = "file"
        fds.append(entry)
    return fds, sockets


def _namespaces(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for ns in _NAMESPACES:
        try:
            out[ns] = os.stat(f"/proc/{pid}/ns/{ns}").st_ino
        except OSError:
            continue
    return out


def _exe_deleted(pid: int) -> bool | None:
    """Whether the executable was deleted (or replaced) since the process started."""
    try:
        return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    except OSError:
        return None


def process_facts(pid: int, hasher: ExeHasher) -> ProcessEvidence | None:
    """What /proc says of `pid`; None when it is gone."""
    stat_ = read_stat(pid)
    if stat_ is None:
        return None
    status = read_status(pid) or {}
    cmdline = read_cmdline(pid) or []
    args, args_redacted = redact_args(cmdline)
    environ_raw = _read(f"/proc/{pid}/environ")
    env, env_redacted = redact_env(parse_environ(environ_raw or b""))
    exe = read_exe(pid)
    hashed = hasher.hash(pid) if exe is not None else "no executable (a kernel thread or a zombie)"
    fds, sockets = read_fds(pid)
    summary: dict[str, Any] = {
        "pid": pid,
        "vpid": status.get("vpid"),
        "ppid": stat_["ppid"],
        "comm": stat_["comm"],
        "state": stat_["state"],
        "start_ticks": stat_["starttime_ticks"],
        "uid": status.get("uid"),
        "euid": status.get("euid"),
        "gid": status.get("gid"),
        "egid": status.get("egid"),
        "cmdline": args,
        "cmdline_redacted_args": args_redacted,
        "cwd": read_cwd(pid),
        "exe": exe,
        "exe_deleted": _exe_deleted(pid),
        "environ": env,
        "environ_redacted": env_redacted,
        "environ_readable": environ_raw is not None,
        "fds": fds,
        "namespaces": _namespaces(pid),
        "cgroups": read_cgroups(pid),
    }
    if isinstance(hashed, tuple):
        summary["exe_sha256"], summary["exe_size"] = hashed
    else:
        summary["exe_sha256"], summary["exe_error"] = None, hashed
    return ProcessEvidence(pid, summary, environ_raw, _read(f"/proc/{pid}/cmdline"), sockets)


def process_tree_text(procs: list[ProcessEvidence]) -> str:
    """The processes as an indented tree (children below their parent), with redacted command lines."""
    by_pid = {p.pid: p for p in procs}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for p in procs:
        ppid = p.summary["ppid"]
        if ppid in by_pid and ppid != p.pid:
            children.setdefault(ppid, []).append(p.pid)
        else:
            roots.append(p.pid)
    lines: list[str] = []

    def walk(pid: int, depth: int) -> None:
        s = by_pid[pid].summary
        cmd = " ".join(s["cmdline"]) or f"[{s['comm']}]"
        lines.append(f"{'  ' * depth}{pid} (ppid {s['ppid']}, uid {s['uid']}) {cmd}")
        for c in sorted(children.get(pid, [])):
            walk(c, depth + 1)

    for r in sorted(roots):
        walk(r, 0)
    return "\n".join(lines) + "\n"
