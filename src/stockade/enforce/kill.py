"""The last resort: kill every process of a container, or each process that executes what it may not.

``kill_container(cgroup_dir)`` writes ``1`` to the cgroup2 directory's ``cgroup.kill`` (Linux >=
5.14: the kernel kills the whole subtree, processes forking meanwhile included, in about 10 ms
here), else sends SIGKILL to every pid listed in the ``cgroup.procs`` of the directory and its
sub-directories, again until none is left (a process may fork between the read and the kill).
Either way it waits until the cgroup is empty, or `timeout_s` passed, and says what it did.

:class:`ExecKiller` is the exec denial of nodes without fanotify permission events: a
``tp_btf/sched_process_exec`` program (``bpf/execkill.bpf.c``) that sends SIGKILL, with
``bpf_send_signal``, to a process of an armed cgroup executing a file whose (device, inode) is not
on the cgroup's allow-list: the process dies before the new program's first instruction, but the
execve() itself succeeded (no errno: eBPF here can kill, not make a syscall fail), so the parent
sees a child killed by SIGKILL. The allow-list is resolved when armed, from paths inside the
container's root (``/proc/<pid>/root``): a file written or replaced later is a new inode, not on
it (a freshly written binary is killed). Nothing is pinned: if the agent dies the program is
detached (fail open; the fanotify enforcer is the one that survives, see ``fileguard``).
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from stockade.enforce.bpfobj import RingReader, open_object
from stockade.enforce.cgroup2 import cgroup_id, check_cgroup2_dir
from stockade.enforce.interface import Denial, DenialSink, EnforceError, Verdict
from stockade.model.errorlog import ErrorLog
from stockade.sensor.containers.discover import cgroup_pids
from stockade.sensor.ebpf import libbpf as lb
from stockade.sensor.ebpf.ringbuf import RingBuffer

__all__ = ["ExecKiller", "KillResult", "kill_container", "pids_of"]

KillMethod = Literal["cgroup.kill", "sigkill"]


@dataclass(frozen=True, slots=True)
class KillResult:
    """What :func:`kill_container` did: how, how many processes were there when it started, whether
    the cgroup is empty now, and how long it took."""

    method: KillMethod
    pids: int
    empty: bool
    elapsed_s: float


def pids_of(cgroup_dir: str) -> list[int]:
    """The pids in `cgroup_dir` and its sub-cgroups."""
    return cgroup_pids(cgroup_dir)


def _sigkill_all(cgroup_dir: str) -> None:
    for pid in pids_of(cgroup_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_container(cgroup_dir: str, *, use_cgroup_kill: bool = True, timeout_s: float = 5.0) -> KillResult:
    """Kill every process of the cgroup2 directory `cgroup_dir` (see the module docstring);
    `use_cgroup_kill=False` takes the SIGKILL path even where cgroup.kill exists."""
    path = check_cgroup2_dir(cgroup_dir)
    t0 = time.monotonic()
    before = len(pids_of(path))
    knob = os.path.join(path, "cgroup.kill")
    method: KillMethod = "cgroup.kill" if use_cgroup_kill and os.path.exists(knob) else "sigkill"
    deadline = t0 + timeout_s
    while True:
        if method == "cgroup.kill":
            try:
                with open(knob, "w", encoding="ascii") as f:
                    f.write("1")
            except OSError as e:
                raise EnforceError(f"cgroup.kill of {path}: {e.strerror}") from e
        else:
            _sigkill_all(path)
        # wait a little for the processes to go; then again (one may have forked meanwhile)
        settle = min(time.monotonic() + 0.1, deadline)
        while pids_of(path) and time.monotonic() < settle:
            time.sleep(0.002)
        empty = not pids_of(path)
        if empty or time.monotonic() >= deadline:
            return KillResult(method, before, empty, time.monotonic() - t0)


# -- the exec killer ---------------------------------------------------------------------------

_EK_KEY = struct.Struct("<QQQ")  # struct ek_key
_EK_CFG = struct.Struct("<B7x")  # struct ek_cfg
_EK_REC = struct.Struct("<QQQQIB3x16s256s")  # struct ek_rec
_U64 = struct.Struct("<Q")


def kernel_dev(st_dev: int) -> int:
    """A stat() device number as the kernel keeps it (``major << 20 | minor``)."""
    return os.major(st_dev) << 20 | os.minor(st_dev)


def _load_and_attach(obj: lb.BpfObject) -> None:
    obj.load()
    obj.attach("ek_exec")


@dataclass
class _Armed:
    container: str
    cgid: int
    policy: str
    rule: str
    keys: list[bytes]


class ExecKiller:
    """Kills, at exec, what an armed container executes outside its allow-list (module docstring).

    `deny_sink` receives a :class:`Denial` (kind ``exec``, the path given to execve, ``blocked``
    True when the process was killed, False when only audited) for each such exec."""

    def __init__(
        self,
        deny_sink: DenialSink,
        *,
        clock: Callable[[], int] = time.time_ns,
        object_path: str | None = None,
    ) -> None:
        self.deny_sink = deny_sink
        self.clock = clock
        self.object_path = object_path
        self._obj: lb.BpfObject | None = None
        self._fds: dict[str, int] = {}
        self._reader: RingReader | None = None
        self._lock = threading.Lock()
        self._armed: dict[str, _Armed] = {}
        self._by_cgid: dict[int, _Armed] = {}
        self._errors = ErrorLog("execkill", logger="stockade.enforce.kill")

    def start(self) -> None:
        """Load and attach the program, start reading its records."""
        with self._lock:
            if self._obj is not None:
                return
            obj = open_object("execkill", self.object_path, _load_and_attach)
            self._obj = obj
            self._fds = {m: obj.map_fd(m) for m in ("armed", "allowed", "kills")}
            ring = RingBuffer(self._fds["kills"], obj.map_max_entries("kills"))
            self._reader = RingReader("execkill", ring, self._decode, self.deny_sink, self._errors)
            self._reader.start()

    def arm(
        self,
        container: str,
        cgroup_dir: str,
        root: str,
        allowed: Iterable[str],
        *,
        policy: str,
        rule: str = "default",
        audit_only: bool = False,
    ) -> list[str]:
        """Kill what `container` (cgroup2 dir `cgroup_dir`, root filesystem at `root`, e.g.
        ``/proc/<pid>/root``) executes outside `allowed` (paths as the container sees them,
        symbolic links followed); re-arming replaces the list. Returns the paths not found."""
        path = check_cgroup2_dir(cgroup_dir)
        cgid = cgroup_id(path)
        keys, missing = self._keys(cgid, root, allowed)
        with self._lock:
            if self._obj is None:
                raise EnforceError("the exec killer is not started")
            old = self._armed.get(container)
            for k in keys:
                lb.map_update(self._fds["allowed"], k, b"\x01")
            lb.map_update(self._fds["armed"], _U64.pack(cgid), _EK_CFG.pack(int(audit_only)))
            if old is not None:
                for k in set(old.keys) - set(keys):
                    lb.map_delete(self._fds["allowed"], k)
            armed = _Armed(container, cgid, policy, rule, keys)
            self._armed[container] = armed
            self._by_cgid = {**self._by_cgid, cgid: armed}
        return missing

    @staticmethod
    def _keys(cgid: int, root: str, allowed: Iterable[str]) -> tuple[list[bytes], list[str]]:
        keys: list[bytes] = []
        missing: list[str] = []
        for p in allowed:
            try:
                st = os.stat(os.path.join(root, p.lstrip("/")))
            except OSError:
                missing.append(p)
                continue
            keys.append(_EK_KEY.pack(cgid, kernel_dev(st.st_dev), st.st_ino))
        return keys, missing

    def disarm(self, container: str) -> None:
        """Stop watching `container` (nothing if it is not armed)."""
        with self._lock:
            a = self._armed.pop(container, None)
            if a is None or self._obj is None:
                return
            lb.map_delete(self._fds["armed"], _U64.pack(a.cgid))
            for k in a.keys:
                lb.map_delete(self._fds["allowed"], k)

    def armed(self) -> list[str]:
        """The armed containers."""
        with self._lock:
            return sorted(self._armed)

    def stop(self) -> None:
        """Detach the program and let go of everything (safe twice)."""
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        with self._lock:
            self._armed.clear()
            self._by_cgid = {}
            if self._obj is not None:
                self._obj.close()
                self._obj = None

    def _decode(self, buf: Any, off: int, _size: int) -> Denial | None:
        ts, cgid, _dev, _ino, pid, killed, comm, filename = _EK_REC.unpack_from(buf, off)
        a = self._by_cgid.get(cgid)
        if a is None:
            return None
        return Denial(
            kind="exec",
            container=a.container,
            target=filename.split(b"\0", 1)[0].decode("utf-8", "replace"),
            pid=pid,
            verdict=Verdict("block", a.policy, a.rule),
            blocked=bool(killed),
            time_ns=self.clock() - (time.monotonic_ns() - ts),
            comm=comm.split(b"\0", 1)[0].decode("utf-8", "replace"),
        )
