"""Network events from conntrack over netlink and /proc/net, without eBPF.

* **Connections**: the kernel's connection tracker announces each new flow
  (``NFNLGRP_CONNTRACK_NEW``) and each flow's end (``NFNLGRP_CONNTRACK_DESTROY``) on
  ``NETLINK_NETFILTER``. A flow has no process: the backend reads /proc/net/{tcp,tcp6,udp,udp6}
  of the flow's network namespace at once and looks for the local socket of either end. A local
  client socket (local address = the flow's source) gives ``connect`` with the pid holding that
  socket; a local listener on the flow's destination gives ``accept`` with the pid of the
  listener's holder (the process that will accept). Socket inodes are matched to pids through
  /proc/<pid>/fd links: **best effort** (a process that closed its socket already is not found;
  such flows are counted in ``received["unattributed"]`` and not reported).
* **Listeners**: /proc/net/tcp[6] sockets in LISTEN state and bound, unconnected UDP sockets,
  scanned every ``scan_interval_s``; each new one gives ``listen`` (TCP) or ``bind`` (UDP).

Conntrack tracks flows in a network namespace only when some netfilter rule there needs it.
With ``enable_tracking=True`` the backend adds an unreferenced iptables chain holding one
``-m conntrack`` rule per namespace (no effect on traffic; removed at close) to turn it on.

Loss: ENOBUFS on the netlink socket is counted in ``stats.lost["conntrack_enobufs"]`` (one per
overflow episode: a lower bound, conntrack events carry no sequence numbers).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from stockade.sensor import procfs
from stockade.sensor.interface import Backend, BackendContext, BackendStats, Capabilities, Role, SensorError
from stockade.sockets.netns import setns_net
from stockade.sockets.procnet import SockEntry, listening, read_sockets

if TYPE_CHECKING:
    from typing import Self

__all__ = ["ConntrackBackend", "Flow"]

NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_NEW = 1
NFNLGRP_CONNTRACK_DESTROY = 3
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_DELETE = 2
NLMSG_ERROR = 2
NLA_TYPE_MASK = 0x3FFF
CTA_TUPLE_ORIG = 1
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_ID = 12

_NLMSGHDR = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_PROTO = {6: "tcp", 17: "udp"}

EVTTYPES = frozenset({"connect", "accept", "listen", "bind", "close"})
MISSING_FIELDS = frozenset(
    {
        "fd.num",
        "evt.rawres",
        "thread.tid (the process id is reported instead)",
        "evt.arg.addr",
        "proc.pid of flows whose socket is gone before /proc is read",
        "connections of namespaces without conntrack (see enable_tracking)",
        "failed connects",
    }
)
DEFAULT_RCVBUF = 8 << 20


@dataclass(frozen=True, slots=True)
class Flow:
    """The original direction of a conntrack flow: client -> server."""

    proto: str
    cip: str
    cport: int
    sip: str
    sport: int
    family: int


@dataclass(slots=True)
class _Ns:
    path: str  # "" = the sensor's own namespace
    nsfd: int = -1
    sock: socket.socket | None = None
    listeners: dict[tuple[str, int, str, int, int], SockEntry] = field(default_factory=dict)
    chain: str = ""


def _parse_attrs(data: bytes, off: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute type -> (payload offset, payload end) of one level of netlink attributes."""
    out: dict[int, tuple[int, int]] = {}
    while off + _NLA.size <= end:
        ln, typ = _NLA.unpack_from(data, off)
        if ln < _NLA.size:
            break
        out[typ & NLA_TYPE_MASK] = (off + _NLA.size, min(off + ln, end))
        off += (ln + 3) & ~3
    return out


def parse_ct_message(data: bytes, off: int, end: int) -> tuple[Flow, int | None] | None:
    """The original tuple and conntrack id of one ctnetlink message body (after nlmsghdr)."""
    top = _parse_attrs(data, off + _NFGEN.size, end)
    orig = top.get(CTA_TUPLE_ORIG)
    if orig is None:
        return None
    tup = _parse_attrs(data, *orig)
    ip, proto = tup.get(CTA_TUPLE_IP), tup.get(CTA_TUPLE_PROTO)
    if ip is None or proto is None:
        return None
    ips = _parse_attrs(data, *ip)
    ps = _parse_attrs(data, *proto)
    if CTA_IP_V4_SRC in ips and CTA_IP_V4_DST in ips:
        af, fam = socket.AF_INET, 4
        src, dst = ips[CTA_IP_V4_SRC], ips[CTA_IP_V4_DST]
    elif CTA_IP_V6_SRC in ips and CTA_IP_V6_DST in ips:
        af, fam = socket.AF_INET6, 6
        src, dst = ips[CTA_IP_V6_SRC], ips[CTA_IP_V6_DST]
    else:
        return None
    pnum = ps.get(CTA_PROTO_NUM)
    if pnum is None or CTA_PROTO_SRC_PORT not in ps or CTA_PROTO_DST_PORT not in ps:
        return None
    proto_name = _PROTO.get(data[pnum[0]])
    if proto_name is None:
        return None
    sp = struct.unpack_from("!H", data, ps[CTA_PROTO_SRC_PORT][0])[0]
    dp = struct.unpack_from("!H", data, ps[CTA_PROTO_DST_PORT][0])[0]
    flow = Flow(
        proto_name,
        socket.inet_ntop(af, data[src[0] : src[1]]),
        sp,
        socket.inet_ntop(af, data[dst[0] : dst[1]]),
        dp,
        fam,
    )
    ct_id = None
    if CTA_ID in top:
        ct_id = struct.unpack_from("!I", data, top[CTA_ID][0])[0]
    return flow, ct_id


def _listener(listeners: dict[tuple[str, str, int], SockEntry], flow: Flow) -> SockEntry | None:
    """The listening socket a new flow reached: on its address, else on any address."""
    for ip in (flow.sip, "0.0.0.0" if flow.family == 4 else "::", "::"):
        server = listeners.get((flow.proto, ip, flow.sport))
        if server is not None:
            return server
    return None


def _fd_name(cip: str, cport: int, sip: str, sport: int, fam: int) -> str:
    if fam == 6:
        return f"[{cip}]:{cport}->[{sip}]:{sport}" if ":" in cip else f"{cip}:{cport}->{sip}:{sport}"
    return f"{cip}:{cport}->{sip}:{sport}"


class ConntrackBackend(Backend):
    """connect / accept / listen / bind (/ close) events from conntrack and /proc/net."""

    name = "conntrack"
    title = "conntrack"
    role: ClassVar[Role] = "fallback"

    def __init__(
        self,
        netns: list[str] | None = None,
        *,
        include_own_netns: bool = True,
        enable_tracking: bool = False,
        scan_interval_s: float = 1.0,
        rcvbuf: int = DEFAULT_RCVBUF,
    ) -> None:
        self.stats = BackendStats()
        self.received: Counter[str] = Counter()
        self.netns_paths = list(netns or [])
        self.include_own_netns = include_own_netns
        self.enable_tracking = enable_tracking
        self.scan_interval_s = scan_interval_s
        self.rcvbuf = rcvbuf
        self._ns: list[_Ns] = []
        self._own_nsfd = -1
        self._want: frozenset[str] = EVTTYPES
        self._last_scan = 0.0
        self._inode_pid: dict[int, int] = {}
        self._flows: dict[tuple[int, int], tuple[int, str, dict[str, Any]]] = {}
        self._started = False

    @classmethod
    def from_context(cls, ctx: BackendContext) -> Self:
        """Turning on connection tracking if ``sensor.conntrack_enable_tracking`` says so."""
        return cls(enable_tracking=ctx.settings.conntrack_enable_tracking)

    @staticmethod
    def probe() -> Capabilities:
        """Root and the conntrack netlink group."""
        if os.geteuid() != 0:
            return Capabilities("conntrack", False, "needs root (CAP_NET_ADMIN) for conntrack events")
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            try:
                s.bind((0, 1 << (NFNLGRP_CONNTRACK_NEW - 1)))
            finally:
                s.close()
        except OSError as e:
            return Capabilities("conntrack", False, f"conntrack netlink unavailable: {e.strerror}")
        return Capabilities("conntrack", True, "", EVTTYPES, MISSING_FIELDS)

    # -- namespaces ------------------------------------------------------------------------------

    @contextmanager
    def _in(self, ns: _Ns) -> Iterator[None]:
        """Run the block with the calling thread in `ns`'s network namespace."""
        if ns.nsfd < 0:
            yield
            return
        setns_net(ns.nsfd)
        try:
            yield
        finally:
            setns_net(self._own_nsfd)

    def _open_ns(self, path: str) -> _Ns:
        ns = _Ns(path)
        if path:
            try:
                ns.nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise SensorError(f"conntrack: cannot open network namespace {path}: {e.strerror}") from e
        with self._in(ns):
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            try:
                s.setsockopt(socket.SOL_SOCKET, 33, self.rcvbuf)  # SO_RCVBUFFORCE
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            groups = 1 << (NFNLGRP_CONNTRACK_NEW - 1)
            if "close" in self._want:
                groups |= 1 << (NFNLGRP_CONNTRACK_DESTROY - 1)
            s.bind((0, groups))
            s.setblocking(False)
            ns.sock = s
            if self.enable_tracking:
                ns.chain = f"STOCKADE_CT_{os.getpid()}"
                self._iptables(ns, ["-N", ns.chain], ["-A", ns.chain, "-m", "conntrack", "--ctstate", "NEW"])
            for ent in listening(read_sockets()):
                ns.listeners[self._lkey(ent)] = ent
        return ns

    def _iptables(self, ns: _Ns, *cmds: list[str]) -> None:
        prefix = ["nsenter", f"--net={ns.path}"] if ns.path else []
        for tool in ("iptables", "ip6tables"):
            for cmd in cmds:
                r = subprocess.run([*prefix, tool, "-w", *cmd], capture_output=True, text=True, check=False)
                if r.returncode != 0:
                    self.stats.error(f"conntrack: {tool} {' '.join(cmd)}: {r.stderr.strip()}")

    def add_netns(self, path: str) -> None:
        """Also watch the network namespace at `path` (``/run/netns/X``, ``/proc/<pid>/ns/net``)."""
        self._ns.append(self._open_ns(path))

    def start(self, evttypes: set[str] | None = None) -> None:
        """Open a conntrack socket in each network namespace and note its listeners."""
        if self._started:
            return
        self._want = EVTTYPES if evttypes is None else frozenset(evttypes) & EVTTYPES
        self._own_nsfd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if self.include_own_netns:
                self._ns.append(self._open_ns(""))
            for p in self.netns_paths:
                self._ns.append(self._open_ns(p))
        except OSError as e:
            self.close()
            raise SensorError(f"conntrack: cannot start: {e.strerror}") from e
        self._started = True
        self._last_scan = time.monotonic()

    def close(self) -> None:
        """Close the sockets and namespaces, removing any tracking chain added (safe twice)."""
        for ns in self._ns:
            if ns.chain:
                try:
                    self._iptables(ns, ["-F", ns.chain], ["-X", ns.chain])
                except OSError:
                    pass
            if ns.sock is not None:
                ns.sock.close()
            if ns.nsfd >= 0:
                os.close(ns.nsfd)
        self._ns.clear()
        if self._own_nsfd >= 0:
            os.close(self._own_nsfd)
            self._own_nsfd = -1
        self._started = False

    # -- reading ---------------------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.1) -> list[dict[str, Any]]:
        """New and ended connections, and listeners found by a periodic scan."""
        if not self._started:
            raise SensorError("conntrack: not started")
        out: list[dict[str, Any]] = []
        socks = {ns.sock.fileno(): ns for ns in self._ns if ns.sock is not None}
        wait = max(min(timeout_s, self.scan_interval_s - (time.monotonic() - self._last_scan)), 0.0)
        try:
            ready, _, _ = select.select(list(socks), [], [], wait)
        except InterruptedError:
            ready = []
        for fd in ready:
            ns = socks[fd]
            flows = self._drain(ns)
            if flows:
                self._flows_to_events(ns, flows, out)
        if time.monotonic() - self._last_scan >= self.scan_interval_s:
            self._last_scan = time.monotonic()
            for ns in self._ns:
                self._scan_listeners(ns, out)
        self.stats.events += len(out)
        return out

    def _drain(self, ns: _Ns) -> list[tuple[bool, Flow, int | None, int]]:
        assert ns.sock is not None
        flows: list[tuple[bool, Flow, int | None, int]] = []
        for _ in range(4096):
            try:
                data = ns.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.stats.lost["conntrack_enobufs"] += 1
                    continue
                self.stats.error(f"conntrack recv: {e.strerror}")
                break
            now = time.time_ns()
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                ln, typ, _fl, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if ln < _NLMSGHDR.size or off + ln > len(data):
                    self.stats.error(f"conntrack: bad netlink length {ln}")
                    break
                subsys, msg = typ >> 8, typ & 0xFF
                if subsys == NFNL_SUBSYS_CTNETLINK and msg in (IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_DELETE):
                    parsed = parse_ct_message(data, off + _NLMSGHDR.size, off + ln)
                    if parsed is not None:
                        self.received["new" if msg == IPCTNL_MSG_CT_NEW else "destroy"] += 1
                        flows.append((msg == IPCTNL_MSG_CT_NEW, parsed[0], parsed[1], now))
                    else:
                        self.received["other_proto"] += 1
                off += (ln + 3) & ~3
        return flows

    @staticmethod
    def _lkey(e: SockEntry) -> tuple[str, int, str, int, int]:
        return (e.proto, e.family, e.lip, e.lport, e.inode)

    def _pids_of(self, inodes: set[int]) -> dict[int, int]:
        found = {i: self._inode_pid[i] for i in inodes if i in self._inode_pid}
        missing = {i for i in inodes if i not in found and i != 0}
        if missing:
            new = procfs.socket_inode_owners(missing)
            if len(self._inode_pid) > 65536:
                self._inode_pid.clear()
            self._inode_pid.update(new)
            found.update(new)
        return found

    def _scan_listeners(self, ns: _Ns, out: list[dict[str, Any]]) -> None:
        try:
            with self._in(ns):
                current = {self._lkey(e): e for e in listening(read_sockets())}
        except OSError as err:
            self.stats.error(f"conntrack: cannot read sockets of {ns.path or 'own netns'}: {err}")
            return
        new = [e for k, e in current.items() if k not in ns.listeners]
        ns.listeners = current
        if not new:
            return
        pids = self._pids_of({e.inode for e in new})
        now = time.time_ns()
        for e in new:
            etype = "listen" if e.proto == "tcp" else "bind"
            self.received[etype] += 1
            pid = pids.get(e.inode)
            if pid is None:
                self.received["unattributed"] += 1
                continue
            if etype not in self._want:
                continue
            ev = self._base(etype, pid, now, ns)
            ev.update(
                {
                    "fd.name": f"[{e.lip}]:{e.lport}"
                    if e.family == 6 and ":" in e.lip
                    else f"{e.lip}:{e.lport}",
                    "fd.sip": e.lip,
                    "fd.sport": e.lport,
                    "fd.lip": e.lip,
                    "fd.lport": e.lport,
                    "fd.l4proto": e.proto,
                    "fd.typechar": "4" if e.family == 4 else "6",
                    "fd.type": "ipv4" if e.family == 4 else "ipv6",
                    "fd.is_server": True,
                    "user.uid": e.uid,
                    "_inode": e.inode,
                }
            )
            out.append(ev)

    def _base(self, etype: str, pid: int, now: int, ns: _Ns) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "evt.type": etype,
            "evt.dir": "<",
            "evt.time": now,
            "proc.pid": pid,
            "thread.tid": pid,
        }
        st = procfs.read_stat(pid)
        if st is not None:
            ev["proc.name"] = st["comm"]
            ev["proc.ppid"] = st["ppid"]
        exe = procfs.read_exe(pid)
        if exe:
            ev["proc.exepath"] = exe
        if ns.path:
            ev["_netns"] = ns.path
        return ev

    def _flows_to_events(
        self, ns: _Ns, flows: list[tuple[bool, Flow, int | None, int]], out: list[dict[str, Any]]
    ) -> None:
        plan = self._ends(ns, flows, out)
        if not plan:
            return
        pids = self._pids_of({p[4].inode for p in plan})
        for flow, ct_id, now, etype, sock in plan:
            pid = pids.get(sock.inode)
            if pid is None:
                self.received["unattributed"] += 1
                continue
            ev = self._flow_event(ns, flow, now, etype, sock, pid)
            if ct_id is not None:
                ev["_ct_id"] = ct_id
                if len(self._flows) > 65536:
                    self._flows.clear()
                self._flows[(ct_id, 0 if etype == "connect" else 1)] = (pid, etype, ev)
            if etype in self._want:
                out.append(ev)

    def _ends(
        self, ns: _Ns, flows: list[tuple[bool, Flow, int | None, int]], out: list[dict[str, Any]]
    ) -> list[tuple[Flow, int | None, int, str, SockEntry]]:
        """Which socket (and so which process) stands for each end of each new flow; the ended
        flows' close events go to `out`."""
        socks: list[SockEntry] = []
        if any(f[0] for f in flows):
            try:
                with self._in(ns):
                    socks = read_sockets()
            except OSError as err:
                self.stats.error(f"conntrack: cannot read sockets of {ns.path or 'own netns'}: {err}")
        by_tuple = {(s.proto, s.lip, s.lport, s.rip, s.rport): s for s in socks}
        listeners = {(s.proto, s.lip, s.lport): s for s in listening(socks)}
        for s in ns.listeners.values():
            listeners.setdefault((s.proto, s.lip, s.lport), s)
        plan: list[tuple[Flow, int | None, int, str, SockEntry]] = []
        for is_new, flow, ct_id, now in flows:
            if not is_new:
                self._close(ns, ct_id, now, out)
                continue
            client = by_tuple.get((flow.proto, flow.cip, flow.cport, flow.sip, flow.sport))
            if client is not None:
                plan.append((flow, ct_id, now, "connect", client))
            server = _listener(listeners, flow)
            if server is not None:
                plan.append((flow, ct_id, now, "accept", server))
            if client is None and server is None:
                self.received["unattributed"] += 1
        return plan

    def _flow_event(
        self, ns: _Ns, flow: Flow, now: int, etype: str, sock: SockEntry, pid: int
    ) -> dict[str, Any]:
        """The connect (client end) or accept (server end) of a new flow, as process `pid` made it."""
        ev = self._base(etype, pid, now, ns)
        fam = flow.family
        local_ip, local_port = (flow.cip, flow.cport) if etype == "connect" else (flow.sip, flow.sport)
        remote_ip, remote_port = (flow.sip, flow.sport) if etype == "connect" else (flow.cip, flow.cport)
        ev.update(
            {
                "fd.name": _fd_name(flow.cip, flow.cport, flow.sip, flow.sport, fam),
                "fd.cip": flow.cip,
                "fd.cport": flow.cport,
                "fd.sip": flow.sip,
                "fd.sport": flow.sport,
                "fd.lip": local_ip,
                "fd.lport": local_port,
                "fd.rip": remote_ip,
                "fd.rport": remote_port,
                "fd.l4proto": flow.proto,
                "fd.typechar": "4" if fam == 4 else "6",
                "fd.type": "ipv4" if fam == 4 else "ipv6",
                "fd.is_server": etype == "accept",
                "user.uid": sock.uid,
                "evt.rawres": 0,
            }
        )
        return ev

    def _close(self, ns: _Ns, ct_id: int | None, now: int, out: list[dict[str, Any]]) -> None:
        if ct_id is None:
            return
        for side in (0, 1):
            hit = self._flows.pop((ct_id, side), None)
            if hit is None or "close" not in self._want:
                continue
            pid, _etype, opened = hit
            ev = self._base("close", pid, now, ns)
            for k, v in opened.items():
                if k.startswith("fd."):
                    ev[k] = v
            ev["_ct_id"] = ct_id
            out.append(ev)
