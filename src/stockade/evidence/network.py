"""The network connections of a container's network namespace, read from its processes' view of
/proc (``/proc/PID/net/{tcp,tcp6,udp,udp6,unix}``), each socket tied to the processes holding it
(socket inode -> pids, from their ``/proc/PID/fd``)."""

from __future__ import annotations

from typing import Any

from stockade.sockets.procnet import parse_proc_net

__all__ = ["INET_TABLES", "NET_TABLES", "TCP_STATES", "parse_unix", "read_net_tables", "sockets_of"]

#: /proc/PID/net files read: name -> (protocol, IP version)
INET_TABLES = {"tcp": ("tcp", 4), "tcp6": ("tcp", 6), "udp": ("udp", 4), "udp6": ("udp", 6)}
NET_TABLES = (*INET_TABLES, "unix")
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}
_UNIX_TYPES = {1: "stream", 2: "dgram", 5: "seqpacket"}


def read_net_tables(pid: int) -> tuple[dict[str, bytes], list[str]]:
    """The raw tables of `pid`'s network namespace, and what could not be read."""
    out: dict[str, bytes] = {}
    problems: list[str] = []
    for name in NET_TABLES:
        try:
            with open(f"/proc/{pid}/net/{name}", "rb") as f:
                out[name] = f.read()
        except OSError as e:
            problems.append(f"/proc/{pid}/net/{name}: {e.strerror or e}")
    return out, problems


def parse_unix(text: str) -> list[dict[str, Any]]:
    """/proc/net/unix: ``Num RefCount Protocol Flags Type St Inode Path``."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines()[1:]:
        f = line.split(None, 7)
        if len(f) < 7:
            continue
        try:
            kind, ino = int(f[4], 16), int(f[6])
            flags = int(f[3], 16)
        except ValueError:
            continue
        out.append(
            {
                "proto": "unix",
                "type": _UNIX_TYPES.get(kind, str(kind)),
                "listening": bool(flags & 0x10000),
                "inode": ino,
                "path": f[7] if len(f) > 7 else None,
            }
        )
    return out


def sockets_of(tables: dict[str, bytes], owners: dict[int, list[int]]) -> list[dict[str, Any]]:
    """Every socket of the tables, with the pids holding it (``owners``: inode -> pids)."""
    out: list[dict[str, Any]] = []
    for name, (proto, version) in INET_TABLES.items():
        text = tables.get(name, b"").decode("ascii", "replace")
        for e in parse_proc_net(text, proto, version):
            state = (
                TCP_STATES.get(e.state, str(e.state))
                if proto == "tcp"
                else ("UNCONN" if e.state == 7 else str(e.state))
            )
            out.append(
                {
                    "proto": f"{proto}{'6' if version == 6 else ''}",
                    "local": f"{e.lip}:{e.lport}" if version == 4 else f"[{e.lip}]:{e.lport}",
                    "remote": f"{e.rip}:{e.rport}" if version == 4 else f"[{e.rip}]:{e.rport}",
                    "state": state,
                    "uid": e.uid,
                    "inode": e.inode,
                    "pids": owners.get(e.inode, []),
                }
            )
    for u in parse_unix(tables.get("unix", b"").decode("utf-8", "replace")):
        u["pids"] = owners.get(u["inode"], [])
        out.append(u)
    return out
