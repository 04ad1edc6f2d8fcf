"""Whether a workload is exposed: the ports its network namespace listens on.

The listening sockets of the namespace of one of its processes (TCP in LISTEN, UDP bound and not
connected), asked of the kernel through sock_diag (:mod:`stockade.sockets.diag`), or read from
``/proc/<pid>/net`` where sock_diag cannot answer. Loopback-only listeners are left out (nothing
outside reaches them).
"""

from __future__ import annotations

import ipaddress

from stockade.sockets.diag import listening_sockets
from stockade.sockets.procnet import SockEntry, listening, read_sockets

__all__ = ["listening_ports"]


def _sockets(pid: int, proc: str) -> list[SockEntry]:
    if proc == "/proc":
        try:
            return listening_sockets(pid)
        except (FileNotFoundError, ProcessLookupError):
            return []
        except OSError:
            pass  # no sock_diag (module missing, no privilege to enter the namespace): /proc
    return listening(read_sockets(f"{proc}/{pid}/net"))


def listening_ports(pid: int, proc: str = "/proc") -> list[str]:
    """``tcp/8080``-style names of the ports `pid`'s network namespace listens on, sorted."""
    found: set[tuple[str, int]] = set()
    for e in _sockets(pid, proc):
        if e.lport and not ipaddress.ip_address(e.lip).is_loopback:
            found.add((e.proto, e.lport))
    return [f"{proto}/{port}" for proto, port in sorted(found)]
