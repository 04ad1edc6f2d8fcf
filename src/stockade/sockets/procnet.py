"""The sockets of a network namespace as ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}`` lists them.

Reading these files makes the kernel walk every socket of the node (its hash tables are shared by
all namespaces): :mod:`stockade.sockets.diag` asks netlink sock_diag instead where it can.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

__all__ = ["TCP_CLOSE", "TCP_LISTEN", "SockEntry", "listening", "parse_proc_net", "read_sockets"]

TCP_LISTEN = 0x0A
TCP_CLOSE = 0x07


@dataclass(frozen=True, slots=True)
class SockEntry:
    """One line of /proc/net/{tcp,tcp6,udp,udp6}."""

    proto: str
    family: int
    lip: str
    lport: int
    rip: str
    rport: int
    state: int
    uid: int
    inode: int


def _hex_ip(h: str) -> str:
    if len(h) == 8:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(h, 16)))
    raw = b"".join(struct.pack("<I", int(h[i : i + 8], 16)) for i in range(0, 32, 8))
    if raw[:12] == b"\0" * 10 + b"\xff\xff":  # v4-mapped
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse_proc_net(text: str, proto: str, family: int) -> list[SockEntry]:
    """Parse /proc/net/tcp-style text; lines that do not parse are skipped."""
    out: list[SockEntry] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        try:
            lip, lport = f[1].split(":")
            rip, rport = f[2].split(":")
            out.append(
                SockEntry(
                    proto,
                    family,
                    _hex_ip(lip),
                    int(lport, 16),
                    _hex_ip(rip),
                    int(rport, 16),
                    int(f[3], 16),
                    int(f[7]),
                    int(f[9]),
                )
            )
        except (ValueError, OSError):
            continue
    return out


def read_sockets(base: str = "/proc/thread-self/net") -> list[SockEntry]:
    """The sockets of the calling thread's network namespace."""
    out: list[SockEntry] = []
    for name, proto, fam in (
        ("tcp", "tcp", 4),
        ("tcp6", "tcp", 6),
        ("udp", "udp", 4),
        ("udp6", "udp", 6),
    ):
        try:
            with open(f"{base}/{name}") as f:
                out.extend(parse_proc_net(f.read(), proto, fam))
        except OSError:
            continue
    return out


def listening(socks: list[SockEntry]) -> list[SockEntry]:
    """The listening sockets among `socks`: TCP in LISTEN, UDP bound and unconnected."""
    out = []
    for e in socks:
        tcp_listen = e.proto == "tcp" and e.state == TCP_LISTEN
        udp_bound = e.proto == "udp" and e.state == TCP_CLOSE and e.rport == 0 and e.lport != 0
        if tcp_listen or udp_bound:
            out.append(e)
    return out
