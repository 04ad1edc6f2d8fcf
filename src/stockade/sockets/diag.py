"""Listening sockets of a network namespace through netlink ``sock_diag`` (``inet_diag``).

Reading ``/proc/<pid>/net/tcp`` makes the kernel walk every socket of the node (its hash tables are
shared by all namespaces) for each file read: milliseconds per namespace on a busy node. An
``inet_diag`` dump asked for TCP sockets in LISTEN walks only the listening table, and one for UDP
only the bound sockets; the answers carry the same fields (address, port, state, uid, inode). The
netlink socket is made inside the namespace (the calling thread enters it with ``setns`` and comes
back at once: a socket belongs to the namespace it was made in).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from stockade.sockets.netns import setns_net
from stockade.sockets.procnet import TCP_CLOSE, TCP_LISTEN, SockEntry

__all__ = ["listening_sockets", "netns_socket"]

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
_HDR = struct.Struct("=IHHII")
#: inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (48 bytes)
_REQ = struct.Struct("=BBBxI48x")
#: inet_diag_msg up to the inode: family, state, timer, retrans, sockid (sport, dport big-endian,
#: src and dst 16 bytes each, interface, cookie), expires, rqueue, wqueue, uid, inode
_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")


@contextmanager
def netns_socket(pid: int | None) -> Iterator[socket.socket]:
    """A sock_diag netlink socket in the network namespace of `pid` (None: this process's)."""
    own = nsfd = -1
    try:
        if pid is not None:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            setns_net(nsfd)
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
        finally:
            if own >= 0:
                setns_net(own)
    finally:
        for fd in (own, nsfd):
            if fd >= 0:
                os.close(fd)
    with s:
        yield s


def _ip(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    addr = socket.inet_ntop(socket.AF_INET6, raw)
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def _dump(s: socket.socket, family: int, proto: int, states: int) -> list[SockEntry]:
    req = _REQ.pack(family, proto, 0, states)
    s.send(_HDR.pack(_HDR.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
    out: list[SockEntry] = []
    name = "tcp" if proto == socket.IPPROTO_TCP else "udp"
    fam = 4 if family == socket.AF_INET else 6
    while True:
        data = s.recv(65536)
        off = 0
        while off + _HDR.size <= len(data):
            length, kind, _flags, _seq, _pid = _HDR.unpack_from(data, off)
            if length < _HDR.size:
                return out
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                if err:
                    raise OSError(-err, f"sock_diag: {os.strerror(-err)}")
                return out
            if kind == SOCK_DIAG_BY_FAMILY and length >= _HDR.size + _MSG.size:
                f, state, _t, _r, sport, dport, src, dst, _if, _c, _e, _rq, _wq, uid, inode = (
                    _MSG.unpack_from(data, off + _HDR.size)
                )
                out.append(
                    SockEntry(
                        name,
                        fam,
                        _ip(f, src),
                        int.from_bytes(sport, "big"),
                        _ip(f, dst),
                        int.from_bytes(dport, "big"),
                        state,
                        uid,
                        inode,
                    )
                )
            off += (length + 3) & ~3
        if not data:
            return out


def listening_sockets(pid: int | None = None) -> list[SockEntry]:
    """TCP sockets in LISTEN and bound, unconnected UDP sockets of `pid`'s network namespace."""
    out: list[SockEntry] = []
    with netns_socket(pid) as s:
        for family in (socket.AF_INET, socket.AF_INET6):
            out += _dump(s, family, socket.IPPROTO_TCP, 1 << TCP_LISTEN)
            udp = _dump(s, family, socket.IPPROTO_UDP, 1 << TCP_CLOSE)
            out += [e for e in udp if e.rport == 0 and e.lport != 0]
    return out
