"""The syscalls the eBPF sensor reports: numbers, Falco event names, and how to read each argument.

Each entry becomes one row of the BPF ``specs`` map (indexed by syscall number): the kernel side
reads the arguments as told here (a user string, a path resolved against a directory fd, a
sockaddr, a socket fd's addresses, an argv array) and user space names them as Falco does
(``evt.arg.<name>``). Syscall numbers are the x86-64 ones (the only table so far).

The row also says how the kernel makes the call's *learning key* (:data:`LEARN_KEYS`): what a
behaviour profile learns of it, by which the program delivers each distinct operation of a watched
cgroup once (:data:`LEARNING_EVTTYPES`; docs/sensor-ebpf.md, "Learning").
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass

from stockade.rules.interest import Target

__all__ = [
    "EXEC_TYPES",
    "FORK_TYPES",
    "LEARNING_EVTTYPES",
    "LEARN_KEYS",
    "PATH_TARGETS",
    "PROCESS_TYPES",
    "SYSCALLS",
    "LearnKey",
    "PathTarget",
    "Syscall",
    "spec_bytes",
    "supported_arch",
]

# argument kinds, as in probe.bpf.c
K_INT, K_STR, K_PATH, K_SOCKADDR, K_SOCKADDR_OUT, K_SOCKFD, K_ARGV, K_RETSOCK, K_FDPATH, K_MEM = range(10)
#: aux of a K_FDPATH: always resolve the fd's path (else: the slot of a path argument that, when not
#: NULL, makes it unneeded, as utimensat's pathname)
ALWAYS = 0xFF
CWD = 0xFF  # aux of a K_PATH: resolve a relative path against the working directory
SPEC_ON, SPEC_FAIL_ONLY, SPEC_DROP_FAILED, SPEC_LEARN_ONLY = 1, 2, 4, 8
#: where the interest filter finds open(2) flags: an argument slot, or these
PF_NO_FLAGS, PF_HOW = 0xFF, 0xFE
#: struct sc_spec: flags, kind[6], aux[6], pf_classes, pf_path, pf_flags, lk, lk_slot, lk_aux, lk_op
_SPEC = struct.Struct("<B6B6BBBBBBBxH")


@dataclass(frozen=True, slots=True)
class Syscall:
    """One syscall the program can follow: its number, its arguments as Falco names them, its family."""

    name: str
    nr: int
    #: (Falco parameter name, kind, aux) per argument slot; name "" = not reported
    args: tuple[tuple[str, int, int], ...]
    #: "open", "path", "path2", "net", "exec", "fork", "id", "utime", "fdpath", "other": how user
    #: space dresses it
    family: str = "other"
    fail_only: bool = False


def _sc(
    name: str, nr: int, family: str, *args: tuple[str, int] | tuple[str, int, int], fail_only: bool = False
) -> Syscall:
    full = tuple((a[0], a[1], a[2] if len(a) > 2 else CWD) for a in args)
    return Syscall(name, nr, full, family, fail_only)


N, S, P = K_INT, K_STR, K_PATH
#: the sizes of the times structs: struct timespec[2] (utimensat), struct timeval[2] (utimes,
#: futimesat), struct utimbuf (utime)
TIMESPEC2, TIMEVAL2, UTIMBUF = 32, 32, 16
SYSCALLS: dict[str, Syscall] = {
    s.name: s
    for s in (
        _sc("open", 2, "open", ("name", P), ("flags", N), ("mode", N)),
        _sc("creat", 85, "open", ("name", P), ("mode", N)),
        _sc("openat", 257, "open", ("dirfd", N), ("name", P, 0), ("flags", N), ("mode", N)),
        _sc("openat2", 437, "open", ("dirfd", N), ("name", P, 0), ("how", K_SOCKADDR, 3), ("size", N)),
        _sc("unlink", 87, "path", ("path", P)),
        _sc("unlinkat", 263, "path", ("dirfd", N), ("name", P, 0), ("flags", N)),
        _sc("rename", 82, "path2", ("oldpath", P), ("newpath", P)),
        _sc("renameat", 264, "path2", ("olddirfd", N), ("oldpath", P, 0), ("newdirfd", N), ("newpath", P, 2)),
        _sc(
            "renameat2",
            316,
            "path2",
            ("olddirfd", N),
            ("oldpath", P, 0),
            ("newdirfd", N),
            ("newpath", P, 2),
            ("flags", N),
        ),
        _sc("link", 86, "path2", ("oldpath", P), ("newpath", P)),
        _sc(
            "linkat",
            265,
            "path2",
            ("olddir", N),
            ("oldpath", P, 0),
            ("newdir", N),
            ("newpath", P, 2),
            ("flags", N),
        ),
        _sc("symlink", 88, "symlink", ("target", S), ("linkpath", P)),
        _sc("symlinkat", 266, "symlink", ("target", S), ("linkdirfd", N), ("linkpath", P, 1)),
        _sc("chmod", 90, "path", ("filename", P), ("mode", N)),
        _sc("fchmodat", 268, "path", ("dirfd", N), ("filename", P, 0), ("mode", N)),
        _sc("fchmodat2", 452, "path", ("dirfd", N), ("filename", P, 0), ("mode", N), ("flags", N)),
        _sc("fchmod", 91, "fdpath", ("fd", K_FDPATH, ALWAYS), ("mode", N)),
        _sc("truncate", 76, "path", ("path", P), ("length", N)),
        _sc("ftruncate", 77, "fdpath", ("fd", K_FDPATH, ALWAYS), ("length", N)),
        # timestamps (timestomping): the file (for utimensat(fd, NULL, ...) = futimens the fd's, for
        # futimesat(fd, NULL, ...) likewise) and the times struct, read from user memory
        _sc(
            "utimensat",
            280,
            "utime",
            ("dirfd", K_FDPATH, 1),
            ("path", P, 0),
            ("times", K_MEM, TIMESPEC2),
            ("flags", N),
        ),
        _sc("futimesat", 261, "utime", ("dirfd", K_FDPATH, 1), ("path", P, 0), ("times", K_MEM, TIMEVAL2)),
        _sc("utimes", 235, "utime", ("path", P), ("times", K_MEM, TIMEVAL2)),
        _sc("utime", 132, "utime", ("path", P), ("times", K_MEM, UTIMBUF)),
        _sc("mkdir", 83, "path", ("path", P), ("mode", N)),
        _sc("mkdirat", 258, "path", ("dirfd", N), ("path", P, 0), ("mode", N)),
        _sc("chroot", 161, "path", ("path", P)),
        _sc("connect", 42, "net", ("fd", K_SOCKFD), ("addr", K_SOCKADDR, 2), ("addrlen", N)),
        _sc("bind", 49, "net", ("fd", K_SOCKFD), ("addr", K_SOCKADDR, 2), ("addrlen", N)),
        _sc("accept", 43, "net", ("fd", N), ("addr", K_SOCKADDR_OUT, 2), ("", N), ("", K_RETSOCK)),
        _sc(
            "accept4",
            288,
            "net",
            ("fd", N),
            ("addr", K_SOCKADDR_OUT, 2),
            ("", N),
            ("flags", N),
            ("", K_RETSOCK),
        ),
        _sc("listen", 50, "net", ("fd", K_SOCKFD), ("backlog", N)),
        _sc("socket", 41, "socket", ("domain", N), ("type", N), ("proto", N)),
        _sc(
            "sendto", 44, "net", ("fd", K_SOCKFD), ("", N), ("size", N), ("flags", N), ("addr", K_SOCKADDR, 5)
        ),
        _sc("setuid", 105, "id", ("uid", N)),
        _sc("setgid", 106, "id", ("gid", N)),
        _sc("setreuid", 113, "id", ("ruid", N), ("euid", N)),
        _sc("setregid", 114, "id", ("rgid", N), ("egid", N)),
        _sc("setresuid", 117, "id", ("ruid", N), ("euid", N), ("suid", N)),
        _sc("setresgid", 119, "id", ("rgid", N), ("egid", N), ("sgid", N)),
        _sc("ptrace", 101, "ptrace", ("request", N), ("pid", N)),
        _sc("init_module", 175, "other", ("", N), ("len", N), ("uargs", S)),
        _sc("finit_module", 313, "other", ("fd", N), ("uargs", S), ("flags", N)),
        _sc("memfd_create", 319, "other", ("name", S), ("flags", N)),
        _sc("mount", 165, "other", ("dev", S), ("dir", P), ("type", S), ("flags", N)),
        _sc("umount2", 166, "other", ("name", P), ("flags", N)),
        _sc("unshare", 272, "other", ("flags", N)),
        _sc("setns", 308, "other", ("fd", N), ("nstype", N)),
        _sc("bpf", 321, "other", ("cmd", N)),
        # the copied descriptor's socket (if it is one): a shell's stdin/stdout moved onto a
        # connection (Falco's "Redirect STDOUT/STDIN to Network Connection")
        _sc("dup", 32, "other", ("fd", K_SOCKFD)),
        _sc("dup2", 33, "other", ("oldfd", K_SOCKFD), ("newfd", N)),
        _sc("dup3", 292, "other", ("oldfd", K_SOCKFD), ("newfd", N), ("flags", N)),
        _sc("execve", 59, "exec", ("filename", P), ("argv", K_ARGV), fail_only=True),
        _sc("execveat", 322, "exec", ("dirfd", N), ("pathname", P, 0), ("argv", K_ARGV), fail_only=True),
        _sc("clone", 56, "fork", ("flags", N), fail_only=True),
        _sc("fork", 57, "fork", fail_only=True),
        _sc("vfork", 58, "fork", fail_only=True),
        _sc("clone3", 435, "fork", fail_only=True),
    )
}
BY_NR: dict[int, Syscall] = {s.nr: s for s in SYSCALLS.values()}

# learning keys, as in probe.bpf.c (struct sc_spec.lk)
LK_NONE, LK_OP, LK_PATH, LK_SADDR, LK_LOCAL, LK_PEER, LK_ARGS = range(7)
#: operation classes of the learning keys (struct seen_key.op): the calls of one class share keys
#: (a path opened by open, openat, openat2 or creat is one key; a bind's port and a listen's too);
#: a privileged syscall is a class of its own, OP_SYSCALL + its number
OP_OPEN, OP_EXEC, OP_EGRESS, OP_LISTEN, OP_INGRESS, OP_SOCKET = 1, 2, 3, 4, 5, 6
OP_SYSCALL = 0x100


@dataclass(frozen=True, slots=True)
class LearnKey:
    """How the kernel makes a call's learning key: `kind` (LK_*), the argument `slot` and `aux` it
    reads, and its operation class `op`."""

    kind: int
    op: int
    slot: int = 0
    aux: int = 0


_OPEN_KEY = LearnKey(LK_PATH, OP_OPEN, aux=1)  # the path (pf_path) and the open's access mode
_PRIVILEGED = (
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "mount",
    "umount2",
    "ptrace",
    "init_module",
    "finit_module",
    "bpf",
    "unshare",
    "setns",
    "chroot",
    "memfd_create",
)
#: the learning key of each syscall that has one: open (path, access mode, result), connect and
#: sendto (the peer: family, address, port, protocol; a sendto without an address: the connected
#: socket's peer), bind and listen (the local address and port, protocol), accept (the peer's
#: address, the local port, protocol), socket (domain, type, protocol), a privileged syscall (itself).
#: Execs are keyed in sched_process_exec: executable path, arguments, the parent's executable.
LEARN_KEYS: dict[str, LearnKey] = {
    "open": _OPEN_KEY,
    "openat": _OPEN_KEY,
    "openat2": _OPEN_KEY,
    "creat": _OPEN_KEY,
    "connect": LearnKey(LK_SADDR, OP_EGRESS, slot=1, aux=2),
    "sendto": LearnKey(LK_SADDR, OP_EGRESS, slot=4, aux=5),
    "bind": LearnKey(LK_SADDR, OP_LISTEN, slot=1, aux=2),
    "listen": LearnKey(LK_LOCAL, OP_LISTEN),
    "accept": LearnKey(LK_PEER, OP_INGRESS),
    "accept4": LearnKey(LK_PEER, OP_INGRESS),
    "socket": LearnKey(LK_ARGS, OP_SOCKET),
    **{n: LearnKey(LK_OP, OP_SYSCALL + SYSCALLS[n].nr) for n in _PRIVILEGED},
}
#: the event types learning needs: the syscalls with a learning key and the execs. The backend
#: follows those the rules do not need for watched cgroups only (SPEC_LEARN_ONLY): the runtime does
#: not add them to what it starts the backend with
LEARNING_EVTTYPES = frozenset(LEARN_KEYS) | frozenset({"execve", "execveat"})
EXEC_TYPES = frozenset({"execve", "execveat"})
FORK_TYPES = frozenset({"clone", "fork", "vfork", "clone3"})
PROCESS_TYPES = EXEC_TYPES | FORK_TYPES | {"procexit"}
#: every event type the backend can produce
ALL_TYPES = frozenset(SYSCALLS) | {"procexit"}


@dataclass(frozen=True, slots=True)
class PathTarget:
    """A syscall the interest filter can drop by its path: one path argument, read as given."""

    #: the argument slot of the path
    slot: int
    #: the argument slot of its open(2) flags, PF_HOW (in openat2's struct open_how), PF_NO_FLAGS
    flags: int
    #: the fields whose value is the path as given (an absolute path: fd.name too)
    fields: frozenset[str]
    is_open: bool
    #: the evt.arg.* fields its events have
    args: frozenset[str]

    @property
    def target(self) -> Target:
        """What the analysis (stockade.rules.interest) needs to know of it."""
        return Target(self.fields, self.is_open, self.flags != PF_NO_FLAGS, self.args)


def _path_target(sc: Syscall) -> PathTarget | None:
    paths = [i for i, (n, kind, _aux) in enumerate(sc.args) if n and kind == K_PATH]
    if sc.family not in ("open", "path") or len(paths) != 1:
        return None
    slot = paths[0]
    fields = {"fd.name", "fd.nameraw", f"evt.arg.{sc.args[slot][0]}"}
    if sc.family == "path":
        fields.add("fs.path.name")
    names = [n for n, _k, _a in sc.args]
    flags = (
        PF_HOW
        if sc.name == "openat2"
        else names.index("flags")
        if sc.family == "open" and "flags" in names
        else PF_NO_FLAGS
    )
    args = {f"evt.arg.{n}" for n in names if n}
    if sc.family == "open":  # the decoder renders the flags (and openat2's mode) from their slots
        args |= {"evt.arg.flags", "evt.arg.mode"}
    return PathTarget(slot, flags, frozenset(fields), sc.family == "open", frozenset(args))


#: the syscalls the interest filter can drop by path (stockade.rules.interest), by name
PATH_TARGETS: dict[str, PathTarget] = {
    n: t for n, sc in SYSCALLS.items() if (t := _path_target(sc)) is not None
}


def supported_arch() -> bool:
    """Whether this machine's syscall table is known (x86_64)."""
    return platform.machine() == "x86_64"


def spec_bytes(
    sc: Syscall, drop_failed: bool = False, path_classes: int = 0, learn_only: bool = False
) -> bytes:
    """The `struct sc_spec` row for this syscall; `drop_failed`: the kernel drops its failed calls;
    `path_classes`: the classes whose calls on a path no rule cares about it drops (interest filter);
    `learn_only`: followed for the cgroups watched for learning only."""
    kinds = [K_INT] * 6
    aux = [CWD] * 6
    for i, (_name, kind, a) in enumerate(sc.args[:5]):
        kinds[i] = kind
        aux[i] = a
    flags = SPEC_ON | (SPEC_FAIL_ONLY if sc.fail_only else 0) | (SPEC_DROP_FAILED if drop_failed else 0)
    flags |= SPEC_LEARN_ONLY if learn_only else 0
    target = PATH_TARGETS.get(sc.name)
    if target is None:
        path_classes = 0
    slot, src = (target.slot, target.flags) if target is not None else (0, PF_NO_FLAGS)
    lk = LEARN_KEYS.get(sc.name, _NO_KEY)
    return _SPEC.pack(flags, *kinds, *aux, path_classes & 0xF, slot, src, lk.kind, lk.slot, lk.aux, lk.op)


_NO_KEY = LearnKey(LK_NONE, 0)
OFF_SPEC = _SPEC.pack(0, *([0] * 6), *([0] * 6), 0, 0, PF_NO_FLAGS, LK_NONE, 0, 0, 0)
