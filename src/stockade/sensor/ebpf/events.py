"""Decoding the eBPF sensor's ring-buffer records into raw events (Falco field names).

A record is a fixed header (``struct ev_hdr`` in probe.bpf.c) followed by blobs
``{u16 tag, u16 len, data}`` at 4-byte aligned offsets. :class:`Decoder` turns one record into a
flat dict as in a recording (docs/events.md), plus the private keys enrichment consumes
(``_cgroup_id``, ``_mntns``, ``_pidns``, ``_start_ns``; ``_novel`` for the cgroups watched for
learning: True when the record's operation was new to its cgroup, False when it was a repeat kept
for the rules or an exec, the kernel's HF_NOVEL and HF_SEEN flags; absent for any other cgroup). It
keeps a bounded table of the programs it saw exec (exe path, arguments, working directory) to fill
the ``proc.*`` fields of later syscall events of the same process, as Falco's thread table does.

The decoder is the per-event floor of the sensor in Python, so it does per record only what the
record needs: each syscall's arguments are worked out once (:class:`_Plan`), values many records
repeat (the command name, the rendered open flags) come from small bounded caches, and a process's
``proc.*`` fields are one prepared dict merged into each of its events.

Where the native hot path is built (``scripts/build-native.sh``: ``_fastdecode.c``), a decoder also
has a :attr:`Decoder.native` walker: :meth:`RingBuffer.consume` then walks the ring buffer and
decodes the syscall records in C, with this decoder's plans, caches and process table, and hands
every other record (exec, fork, exit, anything unusual) to :meth:`Decoder.decode`. Both give the
same events (``tests/sensor/test_ebpf_decode_native.py``); ``STOCKADE_NATIVE=0`` turns it off.
"""

from __future__ import annotations

import errno
import os
import posixpath
import socket
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

from stockade.model.openflags import open_flags_str
from stockade.sensor import native as native_module
from stockade.sensor import procfs
from stockade.sensor.ebpf.syscalls import BY_NR, K_FDPATH, K_INT, K_PATH, K_STR, Syscall

__all__ = ["HDR", "HF_NOVEL", "HF_SEEN", "Decoder", "native_available", "open_flags_str"]

#: the optional native hot path (scripts/build-native.sh); None: the pure-Python decoder
_fastdecode: Any = native_module.load("stockade.sensor.ebpf._fastdecode")

EV_SYSCALL, EV_EXEC, EV_FORK, EV_EXIT = 1, 2, 3, 4
#: flags above the record's kind (its low byte): the operation was new to its watched cgroup; it was
#: a watched cgroup's repeat
HF_NOVEL, HF_SEEN = 0x100, 0x200
#: kind (| flags), nr, len, ts, pid, tid, ppid, vpid, uid, gid, loginuid, tty, cgroup_id, mntns, pidns, ret,
#: args[6], start_ns, comm
HDR = struct.Struct("<HHIQ8IQ2Iq6QQ16s")
_BLOB = struct.Struct("<HH")
_SOCK = struct.Struct("<6H16s16s")
T_STR, T_DIR, T_SADDR, T_SOCK = 0x10, 0x20, 0x30, 0x40
T_ARGV, T_EXE, T_FILENAME, T_CWD, T_CGROUP, T_ENV, T_ENV_TAIL = 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56
#: + fd (0-2): what an exec'd program's stdin, stdout, stderr is (mode, fs magic, inode), its path,
#: its socket
T_STDIO, T_STDIO_PATH, T_STDIO_SOCK = 0x60, 0x64, 0x68
_STDIO = struct.Struct("<IIQ")
#: the proc.* keys of fd 0, 1, 2: (type, name)
_STDIO_KEYS = (
    ("proc.stdin.type", "proc.stdin.name"),
    ("proc.stdout.type", "proc.stdout.name"),
    ("proc.stderr.type", "proc.stderr.name"),
)
_S_IFMT, _S_IFSOCK, _S_IFREG, _S_IFBLK, _S_IFDIR, _S_IFCHR, _S_IFIFO = (
    0o170000,
    0o140000,
    0o100000,
    0o060000,
    0o040000,
    0o020000,
    0o010000,
)
_PIPEFS_MAGIC, _ANON_INODE_FS_MAGIC, _PIDFS_MAGIC = 0x50495045, 0x09041934, 0x50494446
#: an anonymous inode's name (its dentry's) -> Falco's fd.type
_ANON_TYPES = {
    "[eventfd]": "event",
    "[signalfd]": "signalfd",
    "[eventpoll]": "eventpoll",
    "inotify": "inotify",
    "[timerfd]": "timerfd",
    "[userfaultfd]": "userfaultfd",
    "[io_uring]": "io_uring",
    "[pidfd]": "pidfd",
}
_SOCK_FD_TYPES = {2: "ipv4", 10: "ipv6", 1: "unix", 16: "netlink"}
_UNSET_LOGINUID = 4294967295
_HDR_SIZE = HDR.size
_MAX_PROCS = 65536
#: distinct environments kept decoded (Decoder._envs)
ENV_CACHE = 256

_MODE_BITS = (
    (0o1, "S_IXOTH"),
    (0o2, "S_IWOTH"),
    (0o4, "S_IROTH"),
    (0o10, "S_IXGRP"),
    (0o20, "S_IWGRP"),
    (0o40, "S_IRGRP"),
    (0o100, "S_IXUSR"),
    (0o200, "S_IWUSR"),
    (0o400, "S_IRUSR"),
    (0o1000, "S_ISVTX"),
    (0o2000, "S_ISGID"),
    (0o4000, "S_ISUID"),
)
_AF = {0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
_SOCK_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}
_PTRACE = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    3: "PTRACE_PEEKUSR",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    6: "PTRACE_POKEUSR",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    14: "PTRACE_GETFPREGS",
    15: "PTRACE_SETFPREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    24: "PTRACE_SYSCALL",
    0x4200: "PTRACE_SETOPTIONS",
    0x4206: "PTRACE_SEIZE",
    0x4207: "PTRACE_INTERRUPT",
}
_CLONE_NS = (
    (0x00020000, "CLONE_NEWNS"),
    (0x02000000, "CLONE_NEWCGROUP"),
    (0x04000000, "CLONE_NEWUTS"),
    (0x08000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x00000080, "CLONE_NEWTIME"),
    (0x00000100, "CLONE_VM"),
    (0x00000200, "CLONE_FS"),
    (0x00000400, "CLONE_FILES"),
    (0x00010000, "CLONE_THREAD"),
)
_ERRNO = errno.errorcode
_CHMODS = frozenset({"chmod", "fchmod", "fchmodat", "fchmodat2"})
#: int arguments (fds, pids): shown signed, as Falco does (AT_FDCWD is -100)
_INT32_ARGS = frozenset(
    {"dirfd", "fd", "olddirfd", "newdirfd", "olddir", "newdir", "linkdirfd", "pid", "oldfd", "newfd"}
)


def _bits(v: int, table: tuple[tuple[int, str], ...]) -> str:
    return "|".join(name for bit, name in table if v & bit) or "0"


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _path_from_components(raw: bytes) -> str:
    parts = [p for p in raw.split(b"\0") if p and p != b"/"]
    parts.reverse()
    return "/" + _s(b"/".join(parts))


def _normalize(path: str) -> str:
    """An absolute path without '.', '..', repeated or trailing '/' (libsinsp's concatenate_paths)."""
    n = posixpath.normpath(path)
    return "/" + n.lstrip("/") if n.startswith("//") else n


def _join(dir_raw: bytes | None, rel: str) -> str:
    if dir_raw is None:
        return rel
    return _normalize(posixpath.join(_path_from_components(dir_raw), rel))


def _ip(family: int, raw: bytes) -> str:
    if family == 2:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    ip6 = socket.inet_ntop(socket.AF_INET6, raw[:16])
    return ip6[7:] if ip6.startswith("::ffff:") and "." in ip6 else ip6


def parse_sockaddr(raw: bytes) -> tuple[int, str, int] | None:
    """(family, address, port) of a sockaddr; a unix socket gives its path (``@name`` if abstract)."""
    if len(raw) < 2:
        return None
    fam = raw[0] | (raw[1] << 8)
    if fam == 2 and len(raw) >= 8:
        return 2, socket.inet_ntop(socket.AF_INET, raw[4:8]), (raw[2] << 8) | raw[3]
    if fam == 10 and len(raw) >= 24:
        return 10, _ip(10, raw[8:24]), (raw[2] << 8) | raw[3]
    if fam == 1:
        path = raw[2:]
        if path[:1] == b"\0":
            return 1, "@" + _s(path[1:].split(b"\0", 1)[0]), 0
        return 1, _s(path.split(b"\0", 1)[0]), 0
    return fam, "", 0


class _Proc:
    """What an exec said about a process, for its later events. `fields`: the ``proc.*`` fields
    its syscall events take (``proc.cwd`` when known); the exit takes the same without the cwd."""

    __slots__ = ("args", "cmdline", "cwd", "exe", "exepath", "extra", "fields")

    def __init__(
        self,
        exepath: str | None,
        exe: str | None,
        args: str,
        cmdline: str,
        cwd: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.exepath = exepath
        self.exe = exe
        self.args = args
        self.cmdline = cmdline
        self.cwd = cwd
        #: what the exec said besides: proc.env, proc.stdin.type/name, ... (when the kernel read them)
        self.extra = extra
        self.fields: dict[str, Any] = {
            "proc.exepath": exepath,
            "proc.exe": exe,
            "proc.args": args,
            "proc.cmdline": cmdline,
        }
        if cwd is not None:
            self.fields["proc.cwd"] = cwd
        if extra:
            self.fields.update(extra)


#: how a named argument is shown: an int, an int shown as signed 32 bits (fds, pids), a string, a path
_A_INT, _A_INT32, _A_STR, _A_PATH = 0, 1, 2, 3


Ev = dict[str, Any]
Args = tuple[int, ...]
Blobs = dict[int, bytes]
#: what a syscall's family adds to its event: (event, plan, arguments, result, blobs, its paths)
Dress = Callable[[Ev, "_Plan", Args, int, Blobs, list[str]], None]
_OPEN_FLAGS_SLOT = {"openat": 2, "open": 1}


def _open_fields(ev: dict[str, Any], flags: int, ret: int, paths: list[str]) -> None:
    (
        ev["evt.arg.flags"],
        ev["evt.is_open_read"],
        ev["evt.is_open_write"],
        ev["evt.is_open_create"],
    ) = _open_flags(flags)
    if paths:
        ev["fd.name"] = paths[0]
    ev["fd.type"] = "file"
    ev["fd.typechar"] = "f"
    if ret >= 0:
        ev["fd.num"] = ret


def _dress_open(ev: Ev, plan: _Plan, args: Args, ret: int, _blobs: Blobs, paths: list[str]) -> None:
    _open_fields(ev, args[plan.flags_slot], ret, paths)


def _dress_creat(ev: Ev, _plan: _Plan, _args: Args, ret: int, _blobs: Blobs, paths: list[str]) -> None:
    _open_fields(ev, 0o1101, ret, paths)  # O_CREAT|O_WRONLY|O_TRUNC


def _dress_openat2(ev: Ev, _plan: _Plan, _args: Args, ret: int, blobs: Blobs, paths: list[str]) -> None:
    flags = 0
    open_how = blobs.get(T_SADDR + 2)
    if open_how and len(open_how) >= 16:
        flags, mode = struct.unpack_from("<QQ", open_how)
        ev["evt.arg.mode"] = mode
    _open_fields(ev, flags, ret, paths)


def _dress_path(ev: Ev, plan: _Plan, _args: Args, _ret: int, _blobs: Blobs, paths: list[str]) -> None:
    if paths:
        ev["fs.path.name"] = paths[0]
        ev["fd.name"] = paths[0]
        if plan.family == "path2" and len(paths) > 1:
            ev["fs.path.source"] = paths[0]
            ev["fs.path.target"] = paths[1]


def _dress_net(ev: Ev, plan: _Plan, args: Args, ret: int, blobs: Blobs, _paths: list[str]) -> None:
    _net(ev, plan.name, args, ret, blobs)


def _dress_socket(ev: Ev, _plan: _Plan, args: Args, ret: int, _blobs: Blobs, _paths: list[str]) -> None:
    dom, typ = args[0], args[1]
    ev["evt.arg.domain"] = _AF.get(dom, str(dom))
    ev["evt.arg.type"] = _SOCK_TYPES.get(typ & 0xF, str(typ))
    if ret >= 0:
        ev["fd.num"] = ret


def _dress_ptrace(ev: Ev, _plan: _Plan, args: Args, _ret: int, _blobs: Blobs, _paths: list[str]) -> None:
    ev["evt.arg.request"] = _PTRACE.get(args[0], str(args[0]))


def _dress_exec(ev: Ev, _plan: _Plan, _args: Args, _ret: int, blobs: Blobs, paths: list[str]) -> None:
    if paths:
        ev["evt.arg.filename"] = paths[0]
    argv = blobs.get(T_ARGV)
    if argv:
        ev["evt.arg.args"] = _s(argv.rstrip(b"\0").replace(b"\0", b" "))


def _dress_ns(ev: Ev, plan: _Plan, args: Args, _ret: int, _blobs: Blobs, _paths: list[str]) -> None:
    ev["evt.arg.flags"] = _bits(args[1] if plan.name == "setns" else args[0], _CLONE_NS)


def _dress_memfd(ev: Ev, _plan: _Plan, _args: Args, ret: int, _blobs: Blobs, _paths: list[str]) -> None:
    if ret >= 0:
        ev["fd.num"] = ret
        memfd = ev.get("evt.arg.name")
        if memfd is not None:
            ev["fd.name"] = f"/memfd:{memfd}"


def _dress_dup(ev: Ev, plan: _Plan, args: Args, ret: int, blobs: Blobs, _paths: list[str]) -> None:
    if ret >= 0:
        # the new descriptor is the old one's file: its socket fields, when it is a socket
        _net(ev, plan.name, args, ret, blobs)
        ev["fd.num"] = ret


def _mode_names(ev: dict[str, Any]) -> None:
    """A chmod's mode as libsinsp prints PT_MODE: the names of the bits set (rules test
    "contains S_ISUID"); the number stays in evt.rawarg.mode."""
    mode_v = ev.get("evt.arg.mode")
    if mode_v.__class__ is int:
        ev["evt.rawarg.mode"] = mode_v
        ev["evt.arg.mode"] = "|".join(n for b, n in _MODE_BITS if mode_v & b) or "0"


def _then_mode_names(dress: Dress | None) -> Dress:
    def chmod(ev: Ev, plan: _Plan, args: Args, ret: int, blobs: Blobs, paths: list[str]) -> None:
        _mode_names(ev)
        if dress is not None:
            dress(ev, plan, args, ret, blobs, paths)

    return chmod


#: the times struct of each timestamp call: (its argument slot, its layout: "ts" timespec[2], "tv"
#: timeval[2], "ub" utimbuf), and whether its slot 0 is a directory fd whose path stands for a NULL path
_TIMES = {
    "utimensat": (2, "ts", True),
    "futimesat": (2, "tv", True),
    "utimes": (1, "tv", False),
    "utime": (1, "ub", False),
}
_UTIME_NOW, _UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
_TIMES2 = struct.Struct("<qqqq")


def _times(raw: bytes | None, how: str) -> tuple[int | str, int | str] | None:
    """(atime, mtime) of a times struct: ns since the epoch, or UTIME_NOW / UTIME_OMIT (utimensat)."""
    if raw is None:
        return None
    if how == "ub":
        if len(raw) < 16:
            return None
        a, m = struct.unpack_from("<qq", raw)
        return a * 1_000_000_000, m * 1_000_000_000
    if len(raw) < 32:
        return None
    a_s, a_f, m_s, m_f = _TIMES2.unpack_from(raw)
    if how == "tv":
        return a_s * 1_000_000_000 + a_f * 1000, m_s * 1_000_000_000 + m_f * 1000

    def one(sec: int, nsec: int) -> int | str:
        if nsec == _UTIME_NOW:
            return "UTIME_NOW"
        if nsec == _UTIME_OMIT:
            return "UTIME_OMIT"
        return sec * 1_000_000_000 + nsec

    return one(a_s, a_f), one(m_s, m_f)


def _file_fields(ev: Ev, path: str | None) -> None:
    if path is not None:
        ev["fd.name"] = path
        ev["fd.type"] = "file"
        ev["fd.typechar"] = "f"


def _dress_utime(ev: Ev, plan: _Plan, _args: Args, _ret: int, blobs: Blobs, paths: list[str]) -> None:
    """utimensat, futimesat, utimes, utime: the file (given, else the directory fd's: futimens) and
    the times set (absent: NULL times, now)."""
    slot, how, dirfd = _TIMES[plan.name]
    path: str | None = None
    if paths:
        path = paths[0]
        ev["fs.path.name"] = path
    elif dirfd:
        raw = blobs.get(T_DIR)
        if raw is not None:
            path = ev["evt.arg.path"] = _path_from_components(raw)
    _file_fields(ev, path)
    times = _times(blobs.get(T_SADDR + slot), how)
    if times is not None:
        ev["evt.arg.atime"], ev["evt.arg.mtime"] = times


def _dress_fdpath(ev: Ev, _plan: _Plan, _args: Args, _ret: int, blobs: Blobs, _paths: list[str]) -> None:
    """ftruncate, fchmod: the fd's file (fd.name)."""
    raw = blobs.get(T_DIR)
    _file_fields(ev, _path_from_components(raw) if raw is not None else None)
    ev["fd.num"] = ev.get("evt.arg.fd")


_FAMILY_DRESS: dict[str, Dress] = {
    "utime": _dress_utime,
    "fdpath": _dress_fdpath,
    "path": _dress_path,
    "path2": _dress_path,
    "symlink": _dress_path,
    "net": _dress_net,
    "socket": _dress_socket,
    "ptrace": _dress_ptrace,
    "exec": _dress_exec,
}
_NAME_DRESS: dict[str, Dress] = {
    "creat": _dress_creat,
    "openat2": _dress_openat2,
    "unshare": _dress_ns,
    "setns": _dress_ns,
    "memfd_create": _dress_memfd,
    "dup": _dress_dup,
    "dup2": _dress_dup,
    "dup3": _dress_dup,
}


def _dresser(sc: Syscall) -> Dress | None:
    """How a syscall's event is dressed beyond its named arguments: by the syscall itself (creat,
    openat2, namespaces, memfd, dup), else by its family; a chmod's mode is named first."""
    if sc.family == "open":
        return _NAME_DRESS.get(sc.name) or _dress_open
    dress = _FAMILY_DRESS.get(sc.family) or _NAME_DRESS.get(sc.name)
    return _then_mode_names(dress) if sc.name in _CHMODS else dress


def _net(ev: dict[str, Any], name: str, args: tuple[int, ...], ret: int, blobs: dict[int, bytes]) -> None:
    """The socket fields of a network call (or of a dup'd socket): its descriptor, type, ends."""
    sock: tuple[Any, ...] | None = None
    raw = blobs.get(T_SOCK + (0xF if name in ("accept", "accept4") else 0))
    if raw is not None and len(raw) >= _SOCK.size:
        sock = _SOCK.unpack_from(raw)
    sa = blobs.get(T_SADDR + (4 if name == "sendto" else 1))
    peer = parse_sockaddr(sa) if sa else None
    if name in ("accept", "accept4"):
        ev["fd.num"] = ret if ret >= 0 else None
        ev["fd.is_server"] = True
    else:
        ev["fd.num"] = args[0]
    fam = sock[0] if sock is not None else (peer[0] if peer is not None else None)
    if sock is not None:
        l4 = {6: "tcp", 17: "udp", 0: None}.get(sock[2])
        if l4 is None and sock[0] in (2, 10):
            l4 = {1: "tcp", 2: "udp"}.get(sock[1])
        if l4:
            ev["fd.l4proto"] = l4
    if fam in (2, 10):
        _inet(ev, name, fam, sock, peer)
    elif fam == 1:
        ev["fd.type"] = "unix"
        ev["fd.typechar"] = "u"
        if peer is not None:
            ev["fd.name"] = peer[1]
            ev["evt.arg.addr"] = peer[1]
    if name == "sendto":
        ev["evt.arg.size"] = args[2]


def _inet(
    ev: dict[str, Any], name: str, fam: int, sock: tuple[Any, ...] | None, peer: tuple[int, str, int] | None
) -> None:
    """The two ends of an IPv4/IPv6 socket, as Falco names them (client/server, local/remote)."""
    ev["fd.type"] = "ipv4" if fam == 2 else "ipv6"
    ev["fd.typechar"] = "4" if fam == 2 else "6"
    lip, lport, rip, rport = ("0.0.0.0" if fam == 2 else "::"), 0, None, 0
    if sock is not None and sock[0] == fam:
        lip, lport = _ip(fam, sock[6]), sock[3]
        if any(sock[7]) or sock[4]:
            rip, rport = _ip(fam, sock[7]), sock[4]
    if peer is not None and peer[0] == fam:
        rip, rport = peer[1], peer[2]
    if name in ("listen", "bind"):
        if name == "bind" and peer is not None and peer[0] == fam:
            lip, lport = peer[1], peer[2]
        ev["fd.name"] = f"{lip}:{lport}"
        ev["fd.lip"], ev["fd.lport"] = lip, lport
        ev["fd.is_server"] = True
        return
    if rip is None:
        rip = "0.0.0.0" if fam == 2 else "::"
    if name in ("accept", "accept4"):
        # the peer is the client, this end the server
        ev["fd.name"] = f"{rip}:{rport}->{lip}:{lport}"
        ev["fd.cip"], ev["fd.cport"], ev["fd.sip"], ev["fd.sport"] = rip, rport, lip, lport
    else:
        ev["fd.name"] = f"{lip}:{lport}->{rip}:{rport}"
        ev["fd.cip"], ev["fd.cport"], ev["fd.sip"], ev["fd.sport"] = lip, lport, rip, rport
        ev["fd.is_server"] = False
    ev["fd.lip"], ev["fd.lport"], ev["fd.rip"], ev["fd.rport"] = lip, lport, rip, rport
    if peer is not None:
        ev["evt.arg.addr"] = f"{peer[1]}:{peer[2]}"


def _stdio_sock(raw: bytes | None) -> tuple[str, str]:
    """(fd.type, fd.name) of a socket on a standard fd: ipv4/ipv6 with its ends, unix, netlink."""
    if raw is None or len(raw) < _SOCK.size:
        return "unknown", ""
    fam, _typ, _proto, lport, rport, _pad, laddr, raddr = _SOCK.unpack_from(raw)
    typ = _SOCK_FD_TYPES.get(fam, "unknown")
    if fam not in (2, 10):
        return typ, ""
    lip = _ip(fam, laddr)
    if rport or any(raddr):
        return typ, f"{lip}:{lport}->{_ip(fam, raddr)}:{rport}"
    return typ, f"{lip}:{lport}"


class _Plan:
    """How one syscall's record is read: its event type and its named arguments, worked out once.
    `args`: (slot, ``evt.arg.<name>`` key, how it is shown, the tag of its string blob) for the
    arguments read here (the others are dressed by the syscall's family)."""

    __slots__ = ("args", "dress", "family", "flags_slot", "name", "sc")

    def __init__(self, sc: Syscall) -> None:
        self.sc = sc
        self.name = sc.name
        self.family = sc.family
        #: what the family (or the syscall itself) adds to the event, chosen once (the hot path)
        self.dress: Dress | None = _dresser(sc)
        #: the argument holding an open's flags (open, openat)
        self.flags_slot = _OPEN_FLAGS_SLOT.get(sc.name, -1)
        args: list[tuple[int, str, int, int]] = []
        for i, (n, k, _aux) in enumerate(sc.args):
            if not n or k not in (K_INT, K_STR, K_PATH, K_FDPATH):
                continue
            if k in (K_INT, K_FDPATH):  # an fd whose path the family's dress reads: its number here
                how = _A_INT32 if n in _INT32_ARGS else _A_INT
            else:
                how = _A_PATH if k == K_PATH else _A_STR
            args.append((i, f"evt.arg.{n}", how, T_STR + i))
        self.args = tuple(args)


_PLANS = {nr: _Plan(sc) for nr, sc in BY_NR.items()}
#: caches of values many records repeat (bounded: cleared when full)
_CACHE_MAX = 4096
_COMMS: dict[bytes, str] = {}
_OPEN_FLAGS: dict[int, tuple[str, bool, bool, bool]] = {}


def _comm(raw: bytes) -> str:
    s = _COMMS.get(raw)
    if s is None:
        if len(_COMMS) >= _CACHE_MAX:
            _COMMS.clear()
        s = _COMMS[raw] = _s(raw.split(b"\0", 1)[0])
    return s


def _open_flags(flags: int) -> tuple[str, bool, bool, bool]:
    """(flags as Falco renders them, is_open_read, is_open_write, is_open_create)."""
    r = _OPEN_FLAGS.get(flags)
    if r is None:
        if len(_OPEN_FLAGS) >= _CACHE_MAX:
            _OPEN_FLAGS.clear()
        acc = flags & 3
        r = _OPEN_FLAGS[flags] = (open_flags_str(flags), acc != 1, acc != 0, bool(flags & 0o100))
    return r


#: how the native walker dresses a plan's events (as _fastdecode.c's D_* values)
_D_NONE, _D_OPEN, _D_PATH, _D_PY = 0, 1, 2, 3


def native_available() -> bool:
    """Whether the native hot path is built and not turned off (``STOCKADE_NATIVE=0`` when this
    module was imported)."""
    return _fastdecode is not None


def _dress_kind(plan: _Plan) -> tuple[int, Dress | None]:
    """How the native walker dresses `plan`'s events: itself (none, open, path) or through the
    plan's Python dress function."""
    dress = plan.dress
    if dress is None:
        return _D_NONE, None
    if dress is _dress_open:
        return _D_OPEN, None
    if dress is _dress_path:
        return _D_PATH, None
    return _D_PY, dress


#: recent environments and standard fds, rendered (a shell's children share them): bounded caches
_ENVS: dict[bytes, str] = {}
_STDIOS: dict[tuple[bytes | None, ...], dict[str, Any]] = {}
_STDIO_TAGS = tuple(t + fd for fd in range(3) for t in (T_STDIO, T_STDIO_PATH, T_STDIO_SOCK))


def _env_str(raw: bytes) -> str:
    """NUL-separated NAME=value entries -> joined by a space (empty entries left out)."""
    s = _ENVS.get(raw)
    if s is None:
        if len(_ENVS) >= 256:
            _ENVS.clear()
        text = _s(raw).strip("\0")
        if "\0\0" in text:
            text = "\0".join(e for e in text.split("\0") if e)
        s = _ENVS[raw] = text.replace("\0", " ")
    return s


def _stdio(blobs: Blobs) -> dict[str, Any]:
    """proc.stdin/stdout/stderr .type and .name (Falco's fd.type words and fd.name) of the blobs
    (a cached dict: not to be changed)."""
    key = tuple(map(blobs.get, _STDIO_TAGS))
    out = _STDIOS.get(key)
    if out is None:
        if len(_STDIOS) >= 1024:
            _STDIOS.clear()
        out = _STDIOS[key] = _stdio_fields(blobs)
    return out


def _stdio_fields(blobs: Blobs) -> dict[str, Any]:
    """The fields of fds 0-2 from their blobs: type by the inode's mode and file system, name."""
    out: dict[str, Any] = {}
    for fd, (tkey, nkey) in enumerate(_STDIO_KEYS):
        info = blobs.get(T_STDIO + fd)
        if info is None or len(info) < _STDIO.size:
            continue
        mode, magic, ino = _STDIO.unpack_from(info)
        fmt = mode & _S_IFMT
        raw = blobs.get(T_STDIO_PATH + fd)
        path = _path_from_components(raw) if raw is not None else ""
        typ, name = "file", path
        if fmt == _S_IFSOCK:
            typ, name = _stdio_sock(blobs.get(T_STDIO_SOCK + fd))
        elif magic == _PIPEFS_MAGIC:
            typ, name = "pipe", f"pipe:[{ino}]"
        elif fmt == _S_IFIFO:
            typ = "pipe"
        elif fmt == _S_IFDIR:
            typ = "directory"
        elif magic == _PIDFS_MAGIC:
            typ, name = "pidfd", ""
        elif magic == _ANON_INODE_FS_MAGIC or fmt not in (_S_IFREG, _S_IFCHR, _S_IFBLK):
            anon = path.lstrip("/")
            typ = _ANON_TYPES.get(anon) or ("bpf" if anon.startswith("bpf") else "unknown")
            name = ""
        out[tkey] = typ
        out[nkey] = name
    return out


class Decoder:
    """Records -> raw events. `boot_epoch_ns`: wall-clock time of boot (CLOCK_BOOTTIME offset);
    `native`: use the native walker where it is built (:func:`native_available`)."""

    def __init__(
        self, boot_epoch_ns: int, want: frozenset[str] | None = None, *, native: bool = True
    ) -> None:
        self.boot_epoch_ns = boot_epoch_ns
        self.want = want
        self.procs: dict[int, _Proc] = {}
        self.undecodable = 0
        #: exec facts the kernel could not give whole: args_from_proc (completed from /proc),
        #: args_truncated / args_unread (said in the event as proc.args_truncated)
        self.facts: Counter[str] = Counter()
        #: environments decoded lately (raw bytes -> proc.env): a program's children mostly share
        #: theirs, so they share one string (memory: the process table keeps each live process's)
        self._envs: dict[bytes, str] = {}
        #: the native walker over this decoder's state (None: pure Python); see the module docstring
        self.native: Any = None
        if native and native_available() and type(self).decode is Decoder.decode:
            self.native = self._native()

    def _native(self) -> Any:
        """The native walker sharing this decoder's plans, caches and process table."""
        want = self.want
        plans = {}
        for nr, plan in _PLANS.items():
            kind, dress = _dress_kind(plan)
            wanted = want is None or plan.name in want
            plans[nr] = (
                plan.name,
                wanted,
                plan.args,
                kind,
                plan.flags_slot,
                plan.family == "path2",
                dress,
                plan,
            )
        try:
            return _fastdecode.Walker(
                plans=plans,
                procs=self.procs,
                boot=self.boot_epoch_ns,
                open_flags=_OPEN_FLAGS,
                open_flags_fn=_open_flags,
                errnames=_ERRNO,
                join=_join,
                normalize=_normalize,
            )
        except (ValueError, OverflowError):
            return None  # values it cannot hold (a boot time out of range): the Python decoder

    def _remember(self, pid: int, p: _Proc) -> None:
        procs = self.procs
        if len(procs) >= _MAX_PROCS and pid not in procs:
            for k in list(procs)[: _MAX_PROCS // 8]:
                del procs[k]
        procs[pid] = p

    def decode(self, buf: Any, off: int, size: int) -> dict[str, Any] | None:
        """One record of `size` bytes at `off` in `buf` (a memoryview) -> a raw event (None: not
        wanted)."""
        (
            kind,
            nr,
            _ln,
            ts,
            pid,
            tid,
            ppid,
            vpid,
            uid,
            gid,
            loginuid,
            tty,
            cgid,
            mntns,
            pidns,
            ret,
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            start,
            comm,
        ) = HDR.unpack_from(buf, off)
        novel = kind >> 8  # 1: HF_NOVEL, 2: HF_SEEN
        kind &= 0xFF
        plan = None
        if kind == EV_SYSCALL:
            plan = _PLANS.get(nr)
            if plan is None:
                self.undecodable += 1
                return None
            if self.want is not None and plan.name not in self.want:
                return None
        boot = self.boot_epoch_ns
        ev: dict[str, Any] = {
            "evt.type": plan.name if plan is not None else "",
            "evt.dir": "<",
            "evt.time": ts + boot,
            "proc.pid": pid,
            "thread.tid": tid,
            "proc.ppid": ppid,
            "proc.vpid": vpid,
            "user.uid": uid,
            "group.gid": gid,
            "user.loginuid": -1 if loginuid == _UNSET_LOGINUID else loginuid,
            "proc.name": _comm(comm),
            "proc.tty": tty,
            "_cgroup_id": cgid,
            "_mntns": mntns,
            "_pidns": pidns,
            "_start_ns": start + boot,
        }
        if novel:
            ev["_novel"] = novel == 1
        blobs: dict[int, bytes] = {}
        p = off + _HDR_SIZE
        end = off + size
        while p + 4 <= end:
            tag, ln = _BLOB.unpack_from(buf, p)
            q = p + 4
            blobs[tag] = buf[q : q + ln].tobytes()
            p = (q + ln + 3) & ~3
        args = (a0, a1, a2, a3, a4, a5)
        if plan is not None:
            ev["evt.rawres"] = ret
            ev["evt.res"] = "SUCCESS" if ret >= 0 else _ERRNO.get(-ret, str(ret))
            ev["evt.failed"] = ret < 0
            self._syscall(ev, plan, args, ret, blobs)
            proc = self.procs.get(pid)
            if proc is not None:
                ev.update(proc.fields)
            return ev
        return self._process_event(ev, kind, nr, blobs, args)

    def _process_event(self, ev: Ev, kind: int, nr: int, blobs: Blobs, args: Args) -> Ev | None:
        """An exec, fork or exit record's event (`ev` has its header's fields), None if not wanted."""
        if kind == EV_EXEC:
            self._exec(ev, nr, blobs, args[1], args[2], args[3])
        elif kind == EV_FORK:
            self._fork(ev, nr, args[0], args[1])
            if args[2]:
                ev["_pstart_ns"] = args[2] + self.boot_epoch_ns
        elif kind == EV_EXIT:
            self._exit(ev, args[0])
        else:
            self.undecodable += 1
            return None
        if self.want is not None and ev["evt.type"] not in self.want:
            return None
        return ev

    # -- event families ------------------------------------------------------------------------

    def _exec(
        self, ev: dict[str, Any], nr: int, blobs: dict[int, bytes], arg_len: int, unread: int, env_len: int
    ) -> None:
        sc = BY_NR.get(nr)
        ev["evt.type"] = sc.name if sc is not None and sc.family == "exec" else "execve"
        ev["evt.rawres"] = 0
        ev["evt.res"] = "SUCCESS"
        argv_raw = blobs.get(T_ARGV, b"")
        if unread or arg_len > len(argv_raw):
            argv_raw = self._whole_argv(ev, argv_raw, arg_len)
        argv = [_s(a) for a in argv_raw.rstrip(b"\0").split(b"\0")] if argv_raw else []
        filename = _s(blobs[T_FILENAME]) if T_FILENAME in blobs else None
        exe_raw = blobs.get(T_EXE)
        exepath: str | None
        if exe_raw:
            exepath = _path_from_components(exe_raw)
        elif filename and filename.startswith("/"):
            exepath = filename
        else:
            try:
                exepath = os.readlink(f"/proc/{ev['proc.pid']}/exe")
            except OSError:
                exepath = filename
        cwd = procfs.dir_path(_path_from_components(blobs[T_CWD])) if T_CWD in blobs else None
        exe = argv[0] if argv else (filename or ev["proc.name"])
        args = " ".join(argv[1:])
        cmdline = ev["proc.name"] + " " + args if args else ev["proc.name"]
        ev["proc.exepath"] = exepath
        ev["proc.exe"] = exe
        ev["proc.args"] = args
        ev["proc.cmdline"] = cmdline
        if filename is not None:
            ev["evt.arg.filename"] = filename
        cg = blobs.get(T_CGROUP)
        if cg is not None:
            ev["_cgroup_path"] = _path_from_components(cg)
        if cwd is not None:
            ev["proc.cwd"] = cwd
        extra = dict(_stdio(blobs))
        if T_ENV in blobs:
            env = self._env(blobs[T_ENV], blobs.get(T_ENV_TAIL), env_len)
            extra["proc.env"] = env
            ev["evt.arg.env"] = env
        if extra:
            ev.update(extra)
        self._remember(ev["proc.pid"], _Proc(exepath, exe, args, cmdline, cwd, extra))

    def _env(self, head: bytes, tail: bytes | None, whole: int) -> str:
        """proc.env as Falco renders it (NAME=value entries joined by a space) from the first bytes of
        the environment and, when it is longer, its last ones: the entries cut at either edge are
        left out, the middle ones are not seen (counted: env_truncated)."""
        if whole <= len(head) or (tail is not None and whole == len(head) + len(tail)):
            raw = head + tail if tail is not None else head
        else:
            self.facts["env_truncated"] += 1
            raw = head[: head.rfind(b"\0") + 1]
            if tail is not None:
                raw += tail[tail.find(b"\0") + 1 :]
        env = self._envs.get(raw)
        if env is None:
            env = _env_str(raw)
            if len(self._envs) >= ENV_CACHE:
                del self._envs[next(iter(self._envs))]
            self._envs[raw] = env
        return env

    def _fork(self, ev: dict[str, Any], nr: int, flags: int, parent_pid: int) -> None:
        sc = BY_NR.get(nr)
        ev["evt.type"] = sc.name if sc is not None and sc.family == "fork" else "clone"
        ev["evt.rawres"] = 0
        ev["evt.res"] = "SUCCESS"
        ev["evt.arg.flags"] = _bits(flags, _CLONE_NS) if sc is not None and sc.name == "clone" else "0"
        parent = self.procs.get(parent_pid)
        if parent is not None:
            self._remember(ev["proc.pid"], parent)
            ev.update(parent.fields)

    def _exit(self, ev: dict[str, Any], code: int) -> None:
        ev["evt.type"] = "procexit"
        ev["evt.arg.status"] = code
        ev["evt.arg.ret"] = (code >> 8) & 0xFF
        ev["evt.arg.sig"] = code & 0x7F
        ev["evt.arg.core"] = bool(code & 0x80)
        ev["proc.duration"] = max(ev["evt.time"] - ev["_start_ns"], 0)
        proc = self.procs.pop(ev["proc.pid"], None)
        if proc is not None:
            ev["proc.exepath"] = proc.exepath
            ev["proc.exe"] = proc.exe
            ev["proc.args"] = proc.args
            ev["proc.cmdline"] = proc.cmdline
            if proc.extra:
                ev.update(proc.extra)

    def _whole_argv(self, ev: dict[str, Any], part: bytes, arg_len: int) -> bytes:
        """The whole argument list of an exec whose record holds only its first `len(part)` bytes
        (of `arg_len`) or none: from /proc while the process still runs the same program (its
        command line starts with what the kernel gave), else the part, said in the event
        (``proc.args_truncated``) and counted."""
        whole = procfs.read_cmdline_raw(ev["proc.pid"], max(arg_len, 1) + 1)
        if whole is not None and len(whole) >= arg_len and whole.startswith(part):
            self.facts["args_from_proc"] += 1
            return whole
        ev["proc.args_truncated"] = True
        self.facts["args_truncated" if part else "args_unread"] += 1
        return part

    def _syscall(
        self, ev: dict[str, Any], plan: _Plan, args: tuple[int, ...], ret: int, blobs: dict[int, bytes]
    ) -> None:
        paths: list[str] = []
        for i, key, how, tag in plan.args:
            if how <= _A_INT32:
                v = args[i]
                if v >= 1 << 63:
                    v -= 1 << 64
                elif how and v >= 1 << 31:
                    v = (v & 0xFFFFFFFF) - (1 << 32) if v & 0x80000000 else v & 0xFFFFFFFF
                ev[key] = v
                continue
            raw = blobs.get(tag)
            if raw is None:
                ev[key] = None if args[i] == 0 else "<NA>"
                continue
            s = raw.decode("utf-8", "surrogateescape")
            ev[key] = s
            if how == _A_PATH:
                if s[:1] != "/":
                    n = _join(blobs.get(tag - T_STR + T_DIR), s)
                elif "//" in s or "/." in s or s[-1] == "/":
                    n = _normalize(s)
                else:
                    n = s
                if n is not s and not paths:
                    ev["fd.nameraw"] = s  # the path as given (fd.name is normalized, as libsinsp's)
                paths.append(n)
        dress = plan.dress
        if dress is not None:
            dress(ev, plan, args, ret, blobs, paths)
