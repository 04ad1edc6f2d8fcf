"""Whether a workload is exposed: the ports its network namespace listens on.

Read from ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}`` of one of its processes (the tables of the
process's network namespace): TCP sockets in LISTEN, UDP sockets bound to a port and not
connected. Loopback-only listeners are left out (nothing outside reaches them).
"""

from __future__ import annotations

__all__ = ["listening_ports"]

_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_LOOPBACK4 = "0100007F"
_LOOPBACK6 = "00000000000000000000000001000000"


def _table(pid: int, name: str, proc: str) -> list[tuple[str, int, str]]:
    """(local address hex, port, state) of each socket in one table."""
    try:
        with open(f"{proc}/{pid}/net/{name}") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or ":" not in parts[1]:
            continue
        addr, _, port = parts[1].partition(":")
        try:
            out.append((addr, int(port, 16), parts[3]))
        except ValueError:
            continue
    return out


def listening_ports(pid: int, proc: str = "/proc") -> list[str]:
    """``tcp/8080``-style names of the ports `pid`'s network namespace listens on, sorted."""
    found: set[str] = set()
    for table, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        for addr, port, state in _table(pid, table, proc):
            if addr in (_LOOPBACK4, _LOOPBACK6) or port == 0:
                continue
            if (proto == "tcp" and state == _LISTEN) or (proto == "udp" and state == _UDP_UNCONNECTED):
                found.add(f"{proto}/{port}")
    return sorted(found, key=lambda s: (s.split("/")[0], int(s.split("/")[1])))
