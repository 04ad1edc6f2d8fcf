"""A profile's entries in words: what the learner reports as new, what a rollout reports, what
looks under-observed. One line per entry, the same everywhere::

    exec /usr/sbin/httpd (parent /bin/sh)
    exec /usr/bin/sleep * (parent /bin/sh)
    open /tmp/tmp.* (write)
    egress 10.88.0.5:8080/tcp
    egress workload:container/localhost/db/db:5432/tcp
    ingress 10.88.0.0/24 -> port 8080/tcp
    listen 8080/tcp
    privileged setuid
    syscall openat
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from stockade.behavior.generalise import EXCLUDE
from stockade.behavior.model import FileAccess, NetDirection, Profile, Seen

__all__ = ["Section", "describe_file", "describe_net", "describe_process", "entries", "peer_text"]

Section = Literal["processes", "files", "network", "privileged", "syscalls"]


def describe_process(exe: str, parent: str, args: str) -> str:
    """``exec EXE [ARGS] [(parent PARENT)]``."""
    text = f"exec {exe} {args}" if args else f"exec {exe}"
    return f"{text} (parent {parent})" if parent else text


def describe_file(path: str, access: FileAccess) -> str:
    """``open PATH (ACCESS)``; an exclusion entry reads ``never PATTERN (ACCESS)``."""
    if path.startswith(EXCLUDE):
        return f"never {path[1:]} ({access})"
    return f"open {path} ({access})"


def peer_text(peer: str) -> str:
    """A peer as people write it: an address for a /32 or /128, else the network, workload or name."""
    if peer.startswith("cidr:"):
        net = peer[5:]
        if net.endswith(("/32", "/128")):
            ip = net.rsplit("/", 1)[0]
            return f"[{ip}]" if ":" in ip else ip
        return net
    return peer or "*"


def describe_net(direction: NetDirection, peer: str, port: int, protocol: str) -> str:
    """``egress PEER:PORT/PROTO``, ``ingress PEER -> port PORT/PROTO``, ``listen PORT/PROTO``."""
    proto = f"/{protocol}" if protocol else ""
    if direction == "listen":
        return f"listen {port}{proto}"
    if direction == "ingress":
        return f"ingress {peer_text(peer)} -> port {port}{proto}"
    return f"egress {peer_text(peer)}:{port}{proto}"


def entries(profile: Profile) -> Iterator[tuple[Section, str, Seen]]:
    """Every entry of a profile (exclusions left out): its section, its description, its Seen."""
    for (exe, parent, args), s in sorted(profile.processes.items()):
        yield "processes", describe_process(exe, parent, args), s
    for (path, access), s in sorted(profile.files.items()):
        if not path.startswith(EXCLUDE):
            yield "files", describe_file(path, access), s
    for (direction, peer, port, proto), s in sorted(profile.network.items()):
        yield "network", describe_net(direction, peer, port, proto), s
    for op, s in sorted(profile.privileged.items()):
        yield "privileged", f"privileged {op}", s
    for name, s in sorted(profile.syscalls.items()):
        yield "syscalls", f"syscall {name}", s
