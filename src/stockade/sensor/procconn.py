"""Process events from the netlink proc connector (exec, fork, exit), without eBPF.

The kernel sends one message per process event (``PROC_EVENT_FORK``, ``_EXEC``, ``_EXIT``, ``_UID``,
``_GID``, ``_COMM``, ...) to every listener on ``NETLINK_CONNECTOR`` group ``CN_IDX_PROC``. The
event carries only pids, a CPU number and a timestamp: for an exec the backend reads /proc at once
(exe, cmdline, cwd, uids, ppid, cgroup, mount namespace, loginuid) and keeps what it got; a process
that has already exited keeps what its fork inherited. A small table of the processes it has seen
fills procexit and clone events.

Loss accounting: when the socket's receive buffer overflows the kernel drops messages and the next
``recv`` fails with ENOBUFS (once per congestion episode: the number lost is unknown). Each message
also carries a per-CPU sequence number (``cn_msg.seq``) that the kernel increments for every
proc event it sends, so a gap in the sequence of one CPU is the exact number of messages lost.
``stats.lost["netlink_enobufs"]`` is that exact count; ``overflows["netlink_enobufs"]`` counts the
ENOBUFS errors themselves. The backend subscribes to every event type (a filtered subscription would
make the sequence gaps meaningless).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections import Counter
from typing import Any, ClassVar

from stockade.sensor import procfs
from stockade.sensor.interface import Backend, BackendStats, Capabilities, Role, SensorError

__all__ = ["ProcConnectorBackend"]

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
NLMSG_ERROR = 2
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2

EV_NONE = 0
EV_FORK = 0x1
EV_EXEC = 0x2
EV_UID = 0x4
EV_GID = 0x40
EV_SID = 0x80
EV_PTRACE = 0x100
EV_COMM = 0x200
EV_COREDUMP = 0x40000000
EV_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CNMSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVHDR = struct.Struct("=IIQ")  # what, cpu, timestamp_ns (monotonic)
_PIDS2 = struct.Struct("=ii")
_PIDS4 = struct.Struct("=iiii")
_ID = struct.Struct("=iiII")
_EXIT = struct.Struct("=iiII")
_EV_OFF = _NLMSGHDR.size + _CNMSG.size
_DATA_OFF = _EV_OFF + _EVHDR.size

EVTTYPES = frozenset({"execve", "clone", "procexit"})
#: fields the proc connector cannot give (rules reading them see them missing)
MISSING_FIELDS = frozenset(
    {
        "fd.name",
        "fd.num",
        "fd.type",
        "fd.typechar",
        "proc.env",
        "evt.arg.env",
        "evt.arg.flags",
        "proc.exe_ino",
        "proc.is_exe_upper_layer",
        "proc.is_exe_from_memfd",
        "evt.arg.res",
        "evt.arg.cwd",
    }
)
DEFAULT_RCVBUF = 8 << 20
_MAX_TABLE = 65536


def _listen_msg(op: int) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn


class ProcConnectorBackend(Backend):
    """exec / fork / exit events from the netlink proc connector.

    Produces ``execve`` (successful execs only: a failed execve is not reported), ``clone`` (the
    child's side of a process fork; new threads are not reported) and ``procexit`` (thread-group
    leaders). Fields: ``proc.pid``, ``thread.tid``, ``proc.ppid``, ``proc.name``, ``proc.exepath``,
    ``proc.exe``, ``proc.args``, ``proc.cmdline``, ``proc.cwd``, ``proc.tty``, ``user.uid``,
    ``group.gid``, ``user.loginuid``, ``proc.vpid``, ``_cgroup_path``, ``_mntns``, ``_start_ns``;
    procexit adds ``evt.arg.status``, ``evt.arg.ret``, ``evt.arg.sig``, ``evt.arg.core``.
    """

    name = "procconn"
    title = "proc connector"
    role: ClassVar[Role] = "fallback"
    #: the file and network backends' events follow from its exec/fork/exit
    causal_first = True
    #: it names only the pid: its reader races short-lived processes for /proc
    reader_nice = -15

    def __init__(self, rcvbuf: int = DEFAULT_RCVBUF, *, read_proc: bool = True, max_batch: int = 4096):
        self.stats = BackendStats()
        #: ENOBUFS errors seen (congestion episodes), by cause
        self.overflows: Counter[str] = Counter()
        #: messages received, by proc event kind (fork, exec, exit, uid, gid, comm, thread, ...)
        self.received: Counter[str] = Counter()
        #: execs whose process was gone before /proc could be read (no command line, no exe)
        self.exec_unread = 0
        self.rcvbuf = rcvbuf
        self.read_proc = read_proc
        self.max_batch = max_batch
        self._sock: socket.socket | None = None
        self._want: frozenset[str] = EVTTYPES
        self._last_seq: dict[int, int] = {}
        self._table: dict[int, procfs.ProcInfo] = {}
        self._mono_off = procfs.monotonic_epoch_offset_ns()
        self._boot_ns = procfs.boot_epoch_ns()
        self._markers: set[int] = set()
        self._last_settle = 0.0
        #: after an ENOBUFS, send a marker event on every CPU (at most once per this many seconds)
        self.settle_interval_s = 1.0

    @staticmethod
    def probe() -> Capabilities:
        """Root and the proc connector's netlink group."""
        if os.geteuid() != 0:
            return Capabilities("procconn", False, "needs root (CAP_NET_ADMIN) for the proc connector")
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as e:
            return Capabilities("procconn", False, f"netlink connector unavailable: {e.strerror}")
        try:
            s.bind((0, CN_IDX_PROC))
        except OSError as e:
            return Capabilities("procconn", False, f"cannot join the proc connector group: {e.strerror}")
        finally:
            s.close()
        return Capabilities("procconn", True, "", EVTTYPES, MISSING_FIELDS)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, evttypes: set[str] | None = None) -> None:
        """Subscribe to the proc connector (a large receive buffer: it must not overflow)."""
        if self._sock is not None:
            return
        self._want = EVTTYPES if evttypes is None else frozenset(evttypes) & EVTTYPES
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as e:
            raise SensorError(f"proc connector: cannot open netlink socket: {e.strerror}") from e
        try:
            try:
                s.setsockopt(socket.SOL_SOCKET, 33, self.rcvbuf)  # SO_RCVBUFFORCE (root)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.bind((0, CN_IDX_PROC))
            s.send(_listen_msg(PROC_CN_MCAST_LISTEN))
        except OSError as e:
            s.close()
            raise SensorError(f"proc connector: cannot subscribe: {e.strerror}") from e
        s.setblocking(False)
        self._sock = s
        self._mono_off = procfs.monotonic_epoch_offset_ns()
        self._boot_ns = procfs.boot_epoch_ns()

    def close(self) -> None:
        """Unsubscribe and close the socket (safe twice)."""
        s, self._sock = self._sock, None
        if s is None:
            return
        try:
            s.send(_listen_msg(PROC_CN_MCAST_IGNORE))
        except OSError:
            pass
        s.close()

    def fileno(self) -> int:
        """The netlink socket (readable when process events wait)."""
        if self._sock is None:
            raise SensorError("proc connector: not started")
        return self._sock.fileno()

    # -- reading ---------------------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.1) -> list[dict[str, Any]]:
        """The process events waiting, each exec completed from /proc."""
        if self._sock is None:
            raise SensorError("proc connector: not started")
        sock = self._sock
        out: list[dict[str, Any]] = []
        try:
            ready, _, _ = select.select([sock], [], [], max(timeout_s, 0.0))
        except InterruptedError:
            return out
        if not ready:
            return out
        for _ in range(self.max_batch):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.overflows["netlink_enobufs"] += 1
                    if time.monotonic() - self._last_settle >= self.settle_interval_s:
                        self.settle()
                    continue
                if e.errno == errno.EINTR:
                    continue
                self.stats.error(f"proc connector recv: {e.strerror}")
                break
            self._parse(data, out)
        self.stats.events += len(out)
        return out

    def _parse(self, data: bytes, out: list[dict[str, Any]]) -> None:
        off = 0
        n = len(data)
        while off + _NLMSGHDR.size <= n:
            nl_len, nl_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
            if nl_len < _NLMSGHDR.size or off + nl_len > n:
                self.stats.error(f"proc connector: bad netlink length {nl_len}")
                return
            if nl_type == NLMSG_DONE and nl_len >= _DATA_OFF:
                self._event(data, off, out)
            off += (nl_len + 3) & ~3

    def _event(self, data: bytes, off: int, out: list[dict[str, Any]]) -> None:
        idx, val, seq, _ack, _ln, _fl = _CNMSG.unpack_from(data, off + _NLMSGHDR.size)
        if idx != CN_IDX_PROC or val != CN_VAL_PROC:
            return
        what, cpu, ts = _EVHDR.unpack_from(data, off + _EV_OFF)
        if what == EV_NONE:  # the ack of our subscription: not a counted event
            return
        self._sequence(cpu, seq)
        p = off + _DATA_OFF
        t = ts + self._mono_off
        if self._markers and _PIDS4.unpack_from(data, p)[3 if what == EV_FORK else 1] in self._markers:
            if what == EV_EXIT:
                self._markers.discard(_PIDS2.unpack_from(data, p)[1])
            self.received["marker"] += 1
            return
        if what == EV_EXEC:
            tid, tgid = _PIDS2.unpack_from(data, p)
            self.received["exec"] += 1
            self._on_exec(t, tgid, out)
        elif what == EV_FORK:
            _ppid, ptgid, cpid, ctgid = _PIDS4.unpack_from(data, p)
            if cpid != ctgid:
                self.received["thread"] += 1
                return
            self.received["fork"] += 1
            self._on_fork(t, ptgid, ctgid, out)
        elif what == EV_EXIT:
            tid, tgid, code, _sig = _EXIT.unpack_from(data, p)
            if tid != tgid:
                self.received["thread_exit"] += 1
                return
            self.received["exit"] += 1
            self._on_exit(t, tgid, code, out)
        elif what in (EV_UID, EV_GID, EV_COMM):
            self._on_change(what, data, p)
        else:
            self.received["other"] += 1

    def _sequence(self, cpu: int, seq: int) -> None:
        """Count the messages the kernel dropped on `cpu`: the gap in its sequence numbers."""
        last = self._last_seq.get(cpu)
        if last is not None:
            gap = (seq - last - 1) & 0xFFFFFFFF
            if gap and gap < 0x80000000:
                self.stats.lost["netlink_enobufs"] += gap
        self._last_seq[cpu] = seq

    def _on_change(self, what: int, data: bytes, p: int) -> None:
        """A process's new effective uid or gid, or its new name: kept for its later events."""
        if what == EV_COMM:
            tid, tgid = _PIDS2.unpack_from(data, p)
            self.received["comm"] += 1
        else:
            tid, tgid, _r, eff = _ID.unpack_from(data, p)
            self.received["uid" if what == EV_UID else "gid"] += 1
        info = self._table.get(tgid)
        if info is None or tid != tgid:
            return
        if what == EV_COMM:
            info.comm = data[p + 8 : p + 24].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif what == EV_UID:
            info.uid = eff
        else:
            info.gid = eff

    def _remember(self, info: procfs.ProcInfo) -> None:
        if len(self._table) >= _MAX_TABLE:
            # drop the oldest entries (dicts keep insertion order)
            for pid in list(self._table)[: _MAX_TABLE // 8]:
                del self._table[pid]
        self._table[info.pid] = info

    def _on_exec(self, t: int, tgid: int, out: list[dict[str, Any]]) -> None:
        if not ({"execve", "procexit", "clone"} & self._want):
            return
        if self.read_proc:
            info = procfs.snapshot(tgid, self._boot_ns)
            if info.args is None and info.exe is None:
                # gone before /proc could be read: the exec is reported without its command line
                self.exec_unread += 1
                self.stats.incomplete["exec_unread"] += 1
            prev = self._table.get(tgid)
            if prev is not None:
                # what /proc no longer had (the process exited already) and an exec cannot change:
                # the fork's values. Its directory, cgroup and namespaces may have changed between
                # fork and exec (a runtime's exec joins the container's): unknown, never the fork's
                if info.ppid is None:
                    info.ppid = prev.ppid
                if info.uid is None:
                    info.uid, info.gid = prev.uid, prev.gid
                if info.loginuid is None:
                    info.loginuid = prev.loginuid
                if info.start_ns is None:
                    info.start_ns = prev.start_ns
        else:
            info = procfs.ProcInfo(pid=tgid)
        self._remember(info)
        if "execve" in self._want:
            ev = {"evt.type": "execve", "evt.dir": "<", "evt.time": t, "proc.pid": tgid, "thread.tid": tgid}
            ev["evt.rawres"] = 0
            ev.update(info.fields())
            out.append(ev)

    def _on_fork(self, t: int, ptgid: int, child: int, out: list[dict[str, Any]]) -> None:
        parent = self._table.get(ptgid)
        if parent is not None:
            info = procfs.ProcInfo(
                pid=child,
                ppid=ptgid,
                comm=parent.comm,
                exe=parent.exe,
                args=parent.args,
                cwd=parent.cwd,
                uid=parent.uid,
                gid=parent.gid,
                tty=parent.tty,
                loginuid=parent.loginuid,
                cgroup_path=parent.cgroup_path,
                mntns=parent.mntns,
                start_ns=t,
            )
        elif self.read_proc:
            info = procfs.snapshot(child, self._boot_ns)
            info.ppid = ptgid
            if info.start_ns is None:
                info.start_ns = t
        else:
            info = procfs.ProcInfo(pid=child, ppid=ptgid, start_ns=t)
        self._remember(info)
        if "clone" in self._want:
            ev = {"evt.type": "clone", "evt.dir": "<", "evt.time": t, "proc.pid": child, "thread.tid": child}
            ev["evt.rawres"] = 0
            ev.update(info.fields())
            out.append(ev)

    def _on_exit(self, t: int, tgid: int, code: int, out: list[dict[str, Any]]) -> None:
        info = self._table.pop(tgid, None)
        if "procexit" not in self._want:
            return
        ev: dict[str, Any] = {
            "evt.type": "procexit",
            "evt.dir": "<",
            "evt.time": t,
            "proc.pid": tgid,
            "thread.tid": tgid,
            "evt.arg.status": code,
            "evt.arg.ret": (code >> 8) & 0xFF,
            "evt.arg.sig": code & 0x7F,
            "evt.arg.core": bool(code & 0x80),
        }
        if info is not None:
            ev.update(info.fields())
            if info.start_ns is not None:
                ev["proc.duration"] = max(t - info.start_ns, 0)
        out.append(ev)

    def settle(self) -> None:
        """Make every CPU send one more proc event, so that losses show as sequence gaps now.

        The sequence numbers are per CPU: messages lost after the last one a CPU sent show only
        when that CPU sends again. This runs ``/bin/true`` pinned to each CPU (its events are not
        reported) and can be called after an overflow and before reading the final counts.
        """
        self._last_settle = time.monotonic()
        try:
            old = os.sched_getaffinity(0)
        except OSError:
            return
        cpus = sorted(set(range(os.cpu_count() or 1)) | set(self._last_seq))
        for cpu in cpus:
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:
                continue
            try:
                pid = os.posix_spawn("/bin/true", ["true"], {})
                self._markers.add(pid)
                os.waitpid(pid, 0)
            except OSError as e:
                self.stats.error(f"proc connector settle: {e.strerror}")
        try:
            os.sched_setaffinity(0, old)
        except OSError:
            pass

    def lost_total(self) -> int:
        """Events lost so far, all causes."""
        return sum(self.stats.lost.values())

    def wait_idle(self, quiet_s: float = 0.3, limit_s: float = 30.0) -> list[dict[str, Any]]:
        """Read until nothing arrives for `quiet_s` (for tests and shutdown); the events read."""
        out: list[dict[str, Any]] = []
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            batch = self.poll(quiet_s)
            if not batch and not self._pending():
                break
            out.extend(batch)
        return out

    def _pending(self) -> bool:
        if self._sock is None:
            return False
        r, _, _ = select.select([self._sock], [], [], 0)
        return bool(r)
