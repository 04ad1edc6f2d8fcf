"""A process that performs network operations on request and answers with their errno.

Run inside the network namespace and cgroup a test prepares (``python netprobe.py``): it reads one
JSON object per line on standard input and writes one JSON object per line on standard output,
``{"errno": N}`` (0: the operation succeeded). Operations (``op``):

* ``pid``: its pid (``{"pid": N}``);
* ``connect``: TCP connect (or, with ``"proto": "udp"``, a UDP connect) to ``host``/``port``;
* ``sendto``: one UDP datagram to ``host``/``port`` without connecting;
* ``bind``: bind a TCP (or UDP) socket to ``host``/``port`` and listen; kept open;
* ``listen``: the same, answering the bound port (``{"errno": 0, "port": N}``);
* ``raw``: create a raw ICMP socket (``family`` 4 or 6); ``packet``: an AF_PACKET socket;
* ``flood``: ``n`` TCP connects to ``host``/``port``, answering how many failed with EPERM.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from typing import Any

_KEPT: list[socket.socket] = []


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _sock(host: str, proto: str) -> socket.socket:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    return socket.socket(_family(host), kind)


def _errno(fn: Any) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno or -1
    return 0


def _connect(req: dict[str, Any]) -> dict[str, Any]:
    with _sock(req["host"], req.get("proto", "tcp")) as s:
        s.settimeout(5)
        return {"errno": _errno(lambda: s.connect((req["host"], req["port"])))}


def _sendto(req: dict[str, Any]) -> dict[str, Any]:
    with _sock(req["host"], "udp") as s:
        return {"errno": _errno(lambda: s.sendto(b"x", (req["host"], req["port"])))}


def _bind(req: dict[str, Any]) -> dict[str, Any]:
    proto = req.get("proto", "tcp")
    s = _sock(req["host"], proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    err = _errno(lambda: s.bind((req["host"], req["port"])))
    if err == 0 and proto == "tcp":
        s.listen(64)
    if err:
        s.close()
        return {"errno": err}
    _KEPT.append(s)
    return {"errno": 0, "port": s.getsockname()[1]}


def _raw(req: dict[str, Any]) -> dict[str, Any]:
    fam, proto = (socket.AF_INET6, 58) if req.get("family") == 6 else (socket.AF_INET, 1)
    return {"errno": _errno(lambda: socket.socket(fam, socket.SOCK_RAW, proto).close())}


def _packet(_req: dict[str, Any]) -> dict[str, Any]:
    return {"errno": _errno(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close())}


def _flood(req: dict[str, Any]) -> dict[str, Any]:
    denied = 0
    for _ in range(req["n"]):
        with _sock(req["host"], "tcp") as s:
            try:
                s.connect((req["host"], req["port"]))
            except OSError as e:
                denied += e.errno == errno.EPERM
    return {"denied": denied}


OPS = {
    "pid": lambda _r: {"pid": os.getpid()},
    "connect": _connect,
    "sendto": _sendto,
    "bind": _bind,
    "listen": _bind,
    "raw": _raw,
    "packet": _packet,
    "flood": _flood,
}


def main() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.write(json.dumps(OPS[req["op"]](req)) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
