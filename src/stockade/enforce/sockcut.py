"""Cut a container's TCP connections: the kernel destroys each socket (``SOCK_DESTROY`` of the
sock_diag netlink family, ``CONFIG_INET_DIAG_DESTROY``; ``ss -K``), the process sees ECONNABORTED
and the peer a reset, not a connection that hangs until its timeout.

Only sockets of the container's cgroup2 directory and its sub-directories are cut (``ss``'s
``cgroup`` filter), in the container's network namespace (the host's for a host-network container:
the cgroup filter keeps every other process's sockets out of it), in every state but listening,
and never one whose peer is on the allow-list (the same matching as the other layers: the peer's
address, and with a port range the peer's or the container's port).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from stockade.enforce.interface import EnforceError
from stockade.enforce.netns_nft import host_netns, run_in_netns
from stockade.model.allowlist import AllowEntry
from stockade.sensor.containers.discover import cgroup2_mount

__all__ = ["cut_connections", "ss_filter"]


def _cgroup_rels(cgroup_dir: str) -> list[str]:
    root = cgroup2_mount()
    if root is None:
        raise EnforceError("no cgroup2 hierarchy is mounted")
    out: list[str] = []
    for d, _dirs, _files in os.walk(cgroup_dir):
        rel = os.path.relpath(d, root)
        out.append("/" if rel == "." else "/" + rel)
    return out


def _or(terms: list[list[str]]) -> list[str]:
    out: list[str] = ["("]
    for i, t in enumerate(terms):
        if i:
            out.append("or")
        out += ["(", *t, ")"]
    return [*out, ")"]


def ss_filter(cgroups: Sequence[str], allow: Sequence[AllowEntry]) -> list[str]:
    """The ``ss`` filter: sockets of `cgroups` (paths in the cgroup2 hierarchy) whose peer is not
    on `allow` (every token one argument: ss's ``and`` and ``or`` need full parentheses)."""
    expr = _or([["cgroup", c] for c in cgroups])
    peers: list[list[str]] = []
    for e in allow:
        if e.ports is None:
            peers.append(["dst", str(e.network)])
            continue
        lo, hi = e.ports
        port = _or(
            [
                ["dport", ">=", f":{lo}", "and", "dport", "<=", f":{hi}"],
                ["sport", ">=", f":{lo}", "and", "sport", "<=", f":{hi}"],
            ]
        )
        peers.append(["dst", str(e.network), "and", *port])
    if peers:
        expr += ["and", "not", *_or(peers)]
    return expr


def cut_connections(pid: int, cgroup_dir: str, allow: Sequence[AllowEntry]) -> list[str]:
    """Destroy the TCP sockets of the container (process `pid`, cgroup2 directory `cgroup_dir`)
    whose peer is not on `allow`; the connections cut (``local peer``, as ss prints them)."""
    ss = shutil.which("ss")
    if ss is None:
        raise EnforceError("ss not found (apt-get install iproute2)")
    argv = [ss, "-K", "-t", "-n", "-H", "state", "connected", *ss_filter(_cgroup_rels(cgroup_dir), allow)]
    if host_netns(pid):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except subprocess.TimeoutExpired as e:
            raise EnforceError("ss -K timed out") from e
    else:
        r = run_in_netns(pid, argv)
    if r.returncode != 0:
        raise EnforceError(f"ss -K in the network namespace of {pid}: {r.stderr.strip() or r.returncode}")
    cut = []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 5:
            cut.append(f"{f[3]} {f[4]}")
    return cut
