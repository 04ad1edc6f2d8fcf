"""What an event did, as an operation a profile learns and a policy decides: the one mapping from
Falco fields to process, file, network and privileged operations.

:func:`operation_of` reads a syscall event (a flat dict of Falco fields, as the sensor and the
recordings give it) and returns an :data:`Operation`, or None for an event that is not one (a
failed call, a fork, an exit, a close). Failed calls are not behaviour: a profile does not learn
them and a policy does not deny them (the kernel already did). ``connect`` in progress
(EINPROGRESS) counts as done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stockade.behavior.model import FileAccess, NetDirection
from stockade.model.fields import lookup

__all__ = [
    "OPERATION_SYSCALLS",
    "FileOp",
    "NetOp",
    "Operation",
    "PrivOp",
    "ProcessOp",
    "operation_of",
    "syscall_of",
]

_EXEC = frozenset({"execve", "execveat"})
_OPEN = frozenset({"open", "openat", "openat2", "creat"})
_EINPROGRESS = -115

#: syscall -> privileged operation (stockade.behavior.model.PRIVILEGED_OPS)
PRIVILEGED_SYSCALLS: dict[str, str] = {
    "setuid": "setuid",
    "setreuid": "setuid",
    "setresuid": "setuid",
    "setgid": "setgid",
    "setregid": "setgid",
    "setresgid": "setgid",
    "mount": "mount",
    "umount2": "umount",
    "ptrace": "ptrace",
    "init_module": "module_load",
    "finit_module": "module_load",
    "bpf": "bpf",
    "unshare": "unshare",
    "setns": "setns",
    "chroot": "chroot",
    "memfd_create": "memfd_create",
}
_RAW_TYPES = frozenset({"SOCK_RAW", "SOCK_PACKET"})
_NET = frozenset({"socket", "connect", "sendto", "accept", "accept4", "bind", "listen"})
#: the syscalls operations come from: what the sensor must follow for zero trust
OPERATION_SYSCALLS = _EXEC | _OPEN | _NET | frozenset(PRIVILEGED_SYSCALLS)


@dataclass(frozen=True, slots=True)
class ProcessOp:
    """A program started: its executable, its parent's executable ("" unknown), its arguments."""

    exe: str
    parent: str
    args: str


@dataclass(frozen=True, slots=True)
class FileOp:
    """A file opened: the path and each access the open asked for."""

    path: str
    access: tuple[FileAccess, ...]


@dataclass(frozen=True, slots=True)
class NetOp:
    """A connection made (egress), accepted (ingress) or a port bound/listened on (listen).

    `ip`/`port`: the peer for egress and ingress (for ingress `port` is the local port served),
    the local address and port for listen. `protocol`: ``tcp``, ``udp`` or "" unknown."""

    direction: NetDirection
    ip: str
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class PrivOp:
    """A privileged operation (one of PRIVILEGED_OPS)."""

    operation: str


Operation = ProcessOp | FileOp | NetOp | PrivOp

_Get = Callable[[dict[str, Any]], Any]


def _extractor(name: str) -> _Get:
    spec = lookup(name)
    assert spec is not None, name
    return spec.extractor(None)


_IS_READ, _IS_WRITE, _IS_EXEC = (
    _extractor("evt.is_open_read"),
    _extractor("evt.is_open_write"),
    _extractor("evt.is_open_exec"),
)
#: address fields, derived from fd.name when the event lacks them (as in Falco)
_SIP, _SPORT, _CIP, _LIP, _LPORT, _PROTO = (
    _extractor(f) for f in ("fd.sip", "fd.sport", "fd.cip", "fd.lip", "fd.lport", "fd.l4proto")
)


_RAWRES = _extractor("evt.rawres")


def _failed(data: dict[str, Any]) -> bool:
    res = data.get("evt.rawres")
    if not isinstance(res, int):
        if data.get("evt.res") == "EINPROGRESS":
            return data.get("evt.type") != "connect"
        res = _RAWRES(data)  # from evt.res: "SUCCESS" is 0, an errno name -1
    if isinstance(res, int):
        return res < 0 and not (res == _EINPROGRESS and data.get("evt.type") == "connect")
    return data.get("evt.failed") is True


#: OCI runtimes: their processes in a container set it up (runc's init stages, ``runc:[2:INIT]``,
#: run from a copy of runc): what they do is the runtime's, not the workload's
RUNTIMES = frozenset({"runc", "crun", "youki", "runsc", "krun"})


def is_runtime(data: Mapping[str, Any]) -> bool:
    """Whether the event's process is an OCI runtime's (by its executable or its name)."""
    exe = data.get("proc.exepath")
    name = data.get("proc.name")
    return (isinstance(exe, str) and exe.rsplit("/", 1)[-1] in RUNTIMES) or (
        isinstance(name, str) and name.split(":", 1)[0] in RUNTIMES
    )


def syscall_of(data: Mapping[str, Any]) -> str | None:
    """The syscall an event reports (its evt.type), None for what is not a syscall (procexit)."""
    t = data.get("evt.type")
    return t if isinstance(t, str) and t != "procexit" else None


def operation_of(data: dict[str, Any]) -> Operation | None:
    """The operation a syscall event performed (module docstring), or None."""
    t = data.get("evt.type")
    if not isinstance(t, str) or _failed(data):
        return None
    if t in _EXEC:
        exe = data.get("proc.exepath") or data.get("proc.exe")
        if not isinstance(exe, str) or not exe:
            return None
        parent = data.get("proc.pexepath")
        return ProcessOp(exe, _parent(parent), str(data.get("proc.args") or ""))
    if t in _OPEN:
        return _file_op(data)
    if t in PRIVILEGED_SYSCALLS:
        return PrivOp(PRIVILEGED_SYSCALLS[t])
    if t == "socket":
        return PrivOp("raw_socket") if data.get("evt.arg.type") in _RAW_TYPES else None
    return _net_op(t, data)


def _parent(exe: object) -> str:
    """A parent's executable; "" when unknown or the container runtime's (its init runs from a
    copy of itself, ``/dev/fd/N`` or a memfd, whose name changes from one container to the next)."""
    if not isinstance(exe, str) or exe.startswith(("/dev/fd/", "/memfd:", "/proc/self/")):
        return ""
    return "" if exe.rsplit("/", 1)[-1] in RUNTIMES else exe


def _file_op(data: dict[str, Any]) -> FileOp | None:
    path = data.get("fd.name")
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    access: list[FileAccess] = []
    if _IS_READ(data):
        access.append("read")
    if _IS_WRITE(data):
        access.append("write")
    if _IS_EXEC(data):
        access.append("exec")
    return FileOp(path, tuple(access) or ("read",))


def _net_op(t: str, data: dict[str, Any]) -> NetOp | None:
    proto = str(_PROTO(data) or "")
    direction: NetDirection
    if t == "connect" or (t == "sendto" and data.get("evt.arg.addr")):
        # a sendto without a destination writes to a connected socket (an accepted one too): the
        # connection was made by its connect or accept, not by this call
        ip, port, direction = _SIP(data), _SPORT(data), "egress"
    elif t in ("accept", "accept4"):
        ip, port, direction = _CIP(data), _SPORT(data), "ingress"
    elif t in ("bind", "listen"):
        ip, port, direction = _LIP(data) or "0.0.0.0", _LPORT(data), "listen"
        name = data.get("fd.name")
        if port is None and isinstance(name, str) and "->" not in name:  # fd.name "ip:port"
            host, _, num = name.rpartition(":")
            ip, port = host.strip("[]") or ip, int(num) if num.isdigit() else None
    else:
        return None
    if not isinstance(ip, str) or not isinstance(port, int):
        return None
    return NetOp(direction, ip, port, proto)
