"""What this node can really enforce, per kind of operation, found by trying each mechanism.

:func:`probe` tries, in throwaway places it creates and removes (a tmpfs mounted on a fresh
temporary directory, a fresh cgroup2 directory), each enforcement mechanism the enforcers use:

* ``fanotify``: a ``FAN_CLASS_CONTENT`` group with a ``FAN_MARK_FILESYSTEM`` mark for
  ``FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM`` on the private tmpfs; an open of a file there and an exec
  of a copy of ``/bin/true`` there are denied and must fail with EPERM;
* ``cgroup_bpf``: a program denying every ``connect`` attached (bpf_link) to a fresh cgroup2
  directory; a process moved there must get EPERM from a connect to 127.0.0.1;
* ``bpf_send_signal``: a raw-tracepoint program calling ``bpf_send_signal(0)`` (a permission check,
  no signal) run once with ``BPF_PROG_TEST_RUN``: the helper the last-resort kill at exec needs;
* ``cgroup_kill``: ``cgroup.kill`` written in the (empty) fresh cgroup2 directory;
* ``seccomp``: libseccomp present and the kernel's filter actions (``user_notif`` included);
* ``bpf_lsm``: an LSM program (``lsm/file_open``) loaded: expected to be refused on this kernel.

It returns, for each kind of operation (``exec``, ``open``, ``connect``, ``bind``, ``raw_socket``,
``kill``), the :data:`Support` (``block``, ``audit`` or ``none``), the mechanism and the reason, so
a policy never claims Block where the node can only audit. It takes well under a second, leaves
nothing behind, and without root reports every operation as ``none`` ("needs root").
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import secrets
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from stockade.enforce.fanotify_perm import FAN_CLASS_CONTENT, FAN_DENY, FAN_OPEN_EXEC_PERM, FAN_OPEN_PERM
from stockade.enforce.interface import Support
from stockade.sensor.containers.discover import cgroup2_mount
from stockade.sensor.ebpf import libbpf as lb
from stockade.sensor.fanotify import FAN_CLOEXEC, FAN_MARK_ADD, FAN_MARK_FILESYSTEM, FAN_NONBLOCK

__all__ = ["OPS", "Mechanism", "NodeCapabilities", "OpSupport", "Operation", "probe"]

Operation = Literal["exec", "open", "connect", "bind", "raw_socket", "kill"]
OPS: Final[tuple[Operation, ...]] = ("exec", "open", "connect", "bind", "raw_socket", "kill")


@dataclass(frozen=True, slots=True)
class OpSupport:
    """How far this node enforces one kind of operation, by which mechanism, and why."""

    support: Support
    mechanism: str
    reason: str


@dataclass(frozen=True, slots=True)
class Mechanism:
    """The outcome of trying one mechanism: whether it works here, and what was seen."""

    available: bool
    reason: str


@dataclass(frozen=True)
class NodeCapabilities:
    """Per operation, what the node can enforce; per mechanism, what trying it showed."""

    ops: dict[Operation, OpSupport]
    mechanisms: dict[str, Mechanism] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def support(self, op: Operation) -> Support:
        """The support for operation `op`."""
        return self.ops[op].support

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``stockade status``, the API)."""
        return {
            "ops": {
                op: {"support": s.support, "mechanism": s.mechanism, "reason": s.reason}
                for op, s in self.ops.items()
            },
            "mechanisms": {
                n: {"available": m.available, "reason": m.reason} for n, m in self.mechanisms.items()
            },
            "elapsed_ms": round(self.elapsed_s * 1000, 1),
        }


# -- the bpf() syscall, for the few one-off programs the probes load ---------------------------

_SYS_BPF = 321  # x86_64
_BPF_PROG_LOAD, _BPF_PROG_TEST_RUN, _BPF_LINK_CREATE = 5, 10, 28
_PROG_RAW_TP, _PROG_SOCK_ADDR, _PROG_LSM = 17, 18, 29
_ATTACH_INET4_CONNECT, _ATTACH_LSM_MAC = 10, 27
_BTF_KIND_FUNC = 12
_ATTR = 128
_LOAD = struct.Struct("<IIQQIIQII16sIIIIQIIQII")


def _insn(code: int, dst: int, imm: int) -> bytes:
    return struct.pack("<BBhi", code, dst, 0, imm)


#: r0 = 0; exit   (a cgroup program: deny; an LSM program: allow)
_RET0 = _insn(0xB7, 0, 0) + _insn(0x95, 0, 0)
#: r1 = 0; call bpf_send_signal; exit (r0 = what the helper returned)
_SIGNAL0 = _insn(0xB7, 1, 0) + _insn(0x85, 0, 109) + _insn(0x95, 0, 0)


class _Libc:
    """The libc calls the probes make, loaded once."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.syscall.restype = ctypes.c_long
        lib.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
        lib.fanotify_mark.argtypes = [
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint64,
            ctypes.c_int,
            ctypes.c_char_p,
        ]
        self.lib = lib

    def bpf(self, cmd: int, attr: bytes) -> tuple[int, bytes]:
        """bpf(cmd, attr): the result (or -errno) and the attribute block as the kernel left it."""
        buf = ctypes.create_string_buffer(attr.ljust(_ATTR, b"\0"), _ATTR)
        rc = int(self.lib.syscall(_SYS_BPF, cmd, buf, _ATTR))
        return (rc if rc >= 0 else -ctypes.get_errno()), buf.raw

    def check(self, rc: int, what: str) -> int:
        if rc < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"{what}: {os.strerror(e)}")
        return rc


_LIBC: _Libc | None = None


def _libc() -> _Libc:
    global _LIBC
    if _LIBC is None:
        _LIBC = _Libc()
    return _LIBC


def _load(prog_type: int, insns: bytes, attach_type: int = 0, btf_id: int = 0) -> int:
    """Load a one-off program; its fd, or -errno."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = _LOAD.pack(
        prog_type,
        len(insns) // 8,
        ctypes.addressof(code),
        ctypes.addressof(lic),
        *(0, 0, 0, 0, 0),
        b"stockade_probe",
        0,
        attach_type,
        *(0, 0, 0, 0, 0, 0, 0),
        btf_id,
    )
    rc, _ = _libc().bpf(_BPF_PROG_LOAD, attr)
    return rc


def _errname(rc: int) -> str:
    return errno.errorcode.get(-rc, str(-rc))


# -- the mechanisms ----------------------------------------------------------------------------

_FAN_META = struct.Struct("=IBBHQii")


@contextlib.contextmanager
def _private_tmpfs() -> Iterator[str]:
    """A tmpfs mounted on a fresh temporary directory; unmounted and removed afterwards."""
    path = tempfile.mkdtemp(prefix="stockade-probe-")
    lib = _libc()
    try:
        lib.check(lib.lib.mount(b"tmpfs", path.encode(), b"tmpfs", 0, b"size=4m,mode=0700"), "mount tmpfs")
        try:
            yield path
        finally:
            lib.lib.umount2(path.encode(), 2)  # MNT_DETACH
    finally:
        os.rmdir(path)


def _deny_all(fan: int, done: threading.Event, budget_s: float) -> int:
    """Answer DENY to every permission event until `done` (or `budget_s`); how many."""
    denied = 0
    deadline = time.monotonic() + budget_s
    poller = select.poll()
    poller.register(fan, select.POLLIN)
    while not done.is_set() and time.monotonic() < deadline:
        if not poller.poll(20):
            continue
        try:
            buf = os.read(fan, 4096)
        except BlockingIOError:
            continue
        off = 0
        while off + _FAN_META.size <= len(buf):
            ev_len, _v, _r, _m, _mask, fd, _pid = _FAN_META.unpack_from(buf, off)
            if fd >= 0:
                os.write(fan, struct.pack("=iI", fd, FAN_DENY))
                os.close(fd)
                denied += 1
            off += ev_len or len(buf)
    return denied


def _try_open_and_exec(root: str, out: dict[str, int], done: threading.Event) -> None:
    """Open a file and execute a program in `root` (meanwhile denied): their errno."""
    try:
        try:
            with open(os.path.join(root, "f"), "rb"):
                out["open"] = 0
        except OSError as e:
            out["open"] = e.errno or -1
        try:
            subprocess.run([os.path.join(root, "x")], check=False, timeout=2, stdin=subprocess.DEVNULL)
            out["exec"] = 0
        except OSError as e:
            out["exec"] = e.errno or -1
    finally:
        done.set()


def _fanotify() -> dict[str, Mechanism]:
    """fanotify permission events, denying an open and an exec on a private tmpfs."""
    lib = _libc()
    with _private_tmpfs() as root:
        with open(os.path.join(root, "f"), "wb") as f:
            f.write(b"probe")
        shutil.copy(shutil.which("true") or "/bin/true", os.path.join(root, "x"))
        os.chmod(os.path.join(root, "x"), 0o700)
        flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK
        fan = lib.check(lib.lib.fanotify_init(flags, os.O_RDONLY | os.O_LARGEFILE), "fanotify_init")
        try:
            mask = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM
            lib.check(
                lib.lib.fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, -100, root.encode()),
                "fanotify_mark",
            )
            seen: dict[str, int] = {}
            done = threading.Event()
            t = threading.Thread(target=_try_open_and_exec, args=(root, seen, done), daemon=True)
            t.start()
            _deny_all(fan, done, 3.0)
            t.join(2)
        finally:
            os.close(fan)

    def verdict(what: str) -> Mechanism:
        got = seen.get(what)
        if got == errno.EPERM:
            return Mechanism(True, f"a denied {what} failed with EPERM")
        return Mechanism(False, f"a denied {what} gave {errno.errorcode.get(got or 0, got)}, not EPERM")

    return {"fanotify_open": verdict("open"), "fanotify_exec": verdict("exec")}


_CONNECT_CHILD = """
import os, socket, sys
open(os.path.join(sys.argv[1], "cgroup.procs"), "w").write(str(os.getpid()))
s = socket.socket()
try:
    s.connect(("127.0.0.1", 9))
except OSError as e:
    sys.exit(e.errno)
"""


@contextlib.contextmanager
def _fresh_cgroup() -> Iterator[str]:
    root = cgroup2_mount()
    if root is None:
        raise OSError(errno.ENOENT, "no cgroup2 hierarchy is mounted")
    path = os.path.join(root, f"stockade-probe-{os.getpid()}-{secrets.token_hex(3)}")
    os.mkdir(path)
    try:
        yield path
    finally:
        deadline = time.monotonic() + 2
        while True:
            try:
                os.rmdir(path)
                break
            except OSError:  # the child's exit is still being accounted
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)


def _cgroup(cg: str) -> dict[str, Mechanism]:
    """cgroup BPF (a connect denied with EPERM) and cgroup.kill, in the fresh cgroup `cg`."""
    out: dict[str, Mechanism] = {}
    prog = _load(_PROG_SOCK_ADDR, _RET0, _ATTACH_INET4_CONNECT)
    if prog < 0:
        out["cgroup_bpf"] = Mechanism(False, f"loading a cgroup/connect4 program: {_errname(prog)}")
    else:
        try:
            out["cgroup_bpf"] = _attach_and_connect(prog, cg)
        finally:
            os.close(prog)
    knob = os.path.join(cg, "cgroup.kill")
    if not os.path.exists(knob):
        out["cgroup_kill"] = Mechanism(False, "no cgroup.kill (Linux < 5.14)")
    else:
        try:
            with open(knob, "w", encoding="ascii") as f:
                f.write("1")
            out["cgroup_kill"] = Mechanism(True, "cgroup.kill written")
        except OSError as e:
            out["cgroup_kill"] = Mechanism(False, f"cgroup.kill: {e.strerror}")
    return out


def _attach_and_connect(prog: int, cg: str) -> Mechanism:
    fd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        link, _ = _libc().bpf(_BPF_LINK_CREATE, struct.pack("<IIII", prog, fd, _ATTACH_INET4_CONNECT, 0))
    finally:
        os.close(fd)
    if link < 0:
        return Mechanism(False, f"attaching cgroup/connect4 to {cg}: {_errname(link)}")
    try:
        r = subprocess.run(
            [sys.executable, "-S", "-c", _CONNECT_CHILD, cg], check=False, timeout=5, capture_output=True
        )
    finally:
        os.close(link)
    if r.returncode == errno.EPERM:
        return Mechanism(True, "a connect in the cgroup failed with EPERM")
    return Mechanism(False, f"a connect in the cgroup gave exit {r.returncode}, not EPERM")


def _send_signal() -> Mechanism:
    prog = _load(_PROG_RAW_TP, _SIGNAL0)
    if prog < 0:
        return Mechanism(False, f"loading a program calling bpf_send_signal: {_errname(prog)}")
    try:
        rc, out = _libc().bpf(_BPF_PROG_TEST_RUN, struct.pack("<II", prog, 0))
    finally:
        os.close(prog)
    if rc < 0:
        return Mechanism(False, f"running it: {_errname(rc)}")
    ret = struct.unpack_from("<i", out, 4)[0]
    if ret != 0:
        return Mechanism(False, f"bpf_send_signal returned {ret}")
    return Mechanism(True, "bpf_send_signal(0) ran in a raw tracepoint program")


def _seccomp() -> Mechanism:
    lib = ctypes.util.find_library("seccomp")
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail", encoding="ascii") as f:
            actions = f.read().split()
    except OSError:
        return Mechanism(False, "the kernel has no seccomp filters")
    if lib is None:
        return Mechanism(False, "libseccomp not installed")
    return Mechanism(True, f"{lib}; actions: {' '.join(actions)}")


def _bpf_lsm() -> Mechanism:
    lib = lb.libbpf()
    btf = lib.btf__load_vmlinux_btf()
    if not btf:
        return Mechanism(False, "no kernel BTF")
    try:
        btf_id = lib.btf__find_by_name_kind(btf, b"bpf_lsm_file_open", _BTF_KIND_FUNC)
    finally:
        lib.btf__free(btf)
    if btf_id <= 0:
        return Mechanism(False, "the kernel has no BPF-LSM hooks (CONFIG_BPF_LSM)")
    prog = _load(_PROG_LSM, _RET0, _ATTACH_LSM_MAC, btf_id)
    if prog < 0:
        return Mechanism(False, f"loading an lsm/file_open program: {_errname(prog)} (BPF-LSM not enabled)")
    os.close(prog)
    return Mechanism(True, "an lsm/file_open program loaded")


def _guarded(name: str, fn: Callable[[], Mechanism]) -> dict[str, Mechanism]:
    try:
        return {name: fn()}
    except (OSError, lb.BpfError) as e:
        return {name: Mechanism(False, str(e))}


def _mechanisms() -> dict[str, Mechanism]:
    found: dict[str, Mechanism] = {}
    try:
        found.update(_fanotify())
    except OSError as e:
        found["fanotify_open"] = found["fanotify_exec"] = Mechanism(False, str(e))
    try:
        with _fresh_cgroup() as cg:
            found.update(_cgroup(cg))
    except OSError as e:
        found["cgroup_bpf"] = found["cgroup_kill"] = Mechanism(False, str(e))
    found.update(_guarded("bpf_send_signal", _send_signal))
    found.update(_guarded("seccomp", _seccomp))
    found.update(_guarded("bpf_lsm", _bpf_lsm))
    return found


# -- operations from mechanisms ----------------------------------------------------------------

_AUDIT = "the sensor reports it"


def _pick(m: dict[str, Mechanism], name: str, block_reason: str, audit: str = _AUDIT) -> OpSupport:
    got = m[name]
    if got.available:
        return OpSupport("block", name, f"{block_reason} ({got.reason})")
    return OpSupport("audit", "sensor", f"{audit}; {name} unavailable: {got.reason}")


def _exec(m: dict[str, Mechanism]) -> OpSupport:
    """fanotify's EPERM; else the exec killer's SIGKILL at exec (the program never runs)."""
    fan, sig = m["fanotify_exec"], m["bpf_send_signal"]
    if not fan.available and sig.available:
        return OpSupport(
            "block",
            "bpf_send_signal",
            "SIGKILL at exec (stockade.enforce.kill.ExecKiller): the new program never runs, but "
            f"execve() succeeds (no EPERM); fanotify_exec unavailable: {fan.reason}",
        )
    return _pick(m, "fanotify_exec", "FAN_OPEN_EXEC_PERM denies with EPERM")


def _ops(m: dict[str, Mechanism]) -> dict[Operation, OpSupport]:
    kill = (
        OpSupport("block", "cgroup_kill", "cgroup.kill empties the container")
        if m["cgroup_kill"].available
        else OpSupport("block", "sigkill", f"SIGKILL to each pid of cgroup.procs ({m['cgroup_kill'].reason})")
    )
    return {
        "exec": _exec(m),
        "open": _pick(m, "fanotify_open", "FAN_OPEN_PERM denies with EPERM"),
        "connect": _pick(m, "cgroup_bpf", "cgroup/connect4/6 and sendmsg4/6 deny with EPERM"),
        "bind": _pick(m, "cgroup_bpf", "cgroup/bind4/6 deny with EPERM"),
        "raw_socket": _pick(
            m,
            "cgroup_bpf",
            "cgroup/sock_create denies SOCK_RAW of AF_INET/AF_INET6 with EPERM; AF_PACKET sockets are "
            "not seen: drop CAP_NET_RAW to deny them",
        ),
        "kill": kill,
    }


def probe() -> NodeCapabilities:
    """Try every mechanism on this node (see the module docstring) and say what it can enforce."""
    t0 = time.monotonic()
    if os.geteuid() != 0:
        ops = {op: OpSupport("none", "", "needs root") for op in OPS}
        return NodeCapabilities(ops, {}, time.monotonic() - t0)
    m = _mechanisms()
    return NodeCapabilities(_ops(m), m, time.monotonic() - t0)
