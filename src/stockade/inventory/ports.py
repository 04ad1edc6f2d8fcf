"""Listening sockets, per network namespace, attributed to their process and container.

A namespace's sockets (TCP in LISTEN, UDP bound and unconnected) are asked of the kernel through
netlink sock_diag from inside it (:mod:`stockade.sockets.diag`: one process in it names it;
the node's own is this process's), or, where sock_diag cannot answer, read from
``/proc/<pid>/net/{tcp,tcp6,udp,udp6}`` (:func:`stockade.sockets.procnet.read_sockets`, which
costs the kernel a walk of every socket of the node per file). Each socket's inode is
found among the open files (``/proc/<pid>/fd``) of the namespace's processes: a container's pids
first (its cgroup), then every process for the node's own namespace. Owners found are cached by
inode (a socket's inode does not change while it is open).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.sensor.procfs import read_netns, read_status, socket_inode_owners
from stockade.sockets.diag import listening_sockets
from stockade.sockets.procnet import SockEntry, listening, read_sockets

__all__ = ["Namespace", "PortScanner"]


@dataclass(frozen=True, slots=True)
class Namespace:
    """A network namespace to scan: one process in it, the processes that may hold its sockets,
    and the container (None: the node's own namespace) with its workload."""

    pid: int
    pids: tuple[int, ...] | None = None
    container_id: str | None = None
    workload: str | None = None


@dataclass
class PortScanner:
    """Listening sockets of namespaces, owners cached by inode (module docstring)."""

    proc: str = "/proc"
    _owners: dict[int, tuple[int, str | None]] = field(default_factory=dict)
    #: inodes a scan of every process did not find (kernel sockets, a holder gone): not looked for again
    _unowned: set[int] = field(default_factory=set)
    #: sockets whose holder could not be found in the latest scan
    unattributed: int = 0
    #: read through netlink sock_diag (False: /proc/<pid>/net, after sock_diag failed)
    diag: bool = True
    #: why sock_diag is not used
    problem: str | None = None

    def scan(
        self, namespaces: Sequence[Namespace], in_container: Mapping[int, Namespace] | None = None
    ) -> list[dict[str, Any]]:
        """Every listening socket of `namespaces` (each namespace read once: containers sharing
        one, a pod's, are read through the first); a socket of the node's namespace held by a
        process of `in_container` (pid -> its container's namespace: ``--network host``) is that
        container's."""
        seen: set[int] = set()
        found: list[tuple[Namespace, SockEntry]] = []
        for ns in namespaces:
            ino = read_netns(ns.pid if ns.pids is not None else "self", self.proc)
            if ino is None or ino in seen:
                continue
            seen.add(ino)
            found += [(ns, e) for e in self._listening(ns.pid if ns.pids is not None else None)]
        self._attribute(found)
        self.unattributed = 0
        out: list[dict[str, Any]] = []
        keep: dict[int, tuple[int, str | None]] = {}
        for ns, e in found:
            owner = self._owners.get(e.inode)
            if ns.container_id is None and owner is not None and in_container and owner[0] in in_container:
                ns = in_container[owner[0]]
            if owner is None:
                self.unattributed += 1
            else:
                keep[e.inode] = owner
            out.append(
                {
                    "protocol": e.proto if e.family == 4 else f"{e.proto}6",
                    "address": e.lip,
                    "port": e.lport,
                    "pid": owner[0] if owner else None,
                    "process": owner[1] if owner else None,
                    "container_id": ns.container_id,
                    "workload": ns.workload,
                }
            )
        self._owners = keep
        live = {e.inode for _, e in found}
        self._unowned &= live
        return out

    def _listening(self, pid: int | None) -> list[SockEntry]:
        """Through sock_diag; through /proc/<pid>/net where sock_diag cannot answer (its module
        missing); none when the process is gone."""
        if self.diag:
            try:
                return listening_sockets(pid)
            except (FileNotFoundError, ProcessLookupError):
                return []
            except OSError as e:
                self.diag = False
                self.problem = f"sock_diag: {e}: listening sockets read from /proc/<pid>/net instead"
        base = f"{self.proc}/{pid}/net" if pid is not None else f"{self.proc}/thread-self/net"
        return listening(read_sockets(base))

    def _attribute(self, found: Iterable[tuple[Namespace, SockEntry]]) -> None:
        missing: dict[int, Namespace] = {
            e.inode: ns
            for ns, e in found
            if e.inode and e.inode not in self._owners and e.inode not in self._unowned
        }
        if not missing:
            return
        pids: list[int] = []
        for ns in {id(n): n for n in missing.values()}.values():
            pids += ns.pids or ()
        owners = socket_inode_owners(set(missing), pids) if pids else {}
        rest = set(missing) - set(owners)
        if rest and any(ns.pids is None for ns in missing.values()):
            owners.update(socket_inode_owners(rest))
            self._unowned |= rest - set(owners)
        for ino, pid in owners.items():
            st = read_status(pid)
            self._owners[ino] = (pid, str(st.get("name")) if st and st.get("name") else None)
