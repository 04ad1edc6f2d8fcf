"""Who is at which address: the peers of zero-trust network rules that are not addresses.

* **Workloads.** Each running container's own addresses
  (:func:`stockade.sensor.containers.addresses.container_addresses`) belong to its workload. While
  learning, an egress or ingress peer at such an address is recorded as ``workload:ID`` rather than
  an address (:attr:`Peers.workload_at`, the learner's ``peer_of``); a rule with
  ``peer: {workload: ID}`` stands for the addresses of that workload's containers running now
  (:meth:`Peers.resolve`). When a workload's addresses change (a replica starts, a pod is
  rescheduled), :meth:`Peers.update` says which workloads changed, and the runtime recompiles and
  re-applies the policies that name them.
* **DNS names.** A rule with ``peer: {dns: NAME}`` stands for the addresses NAME resolves to on
  this node (the system resolver, ``/etc/hosts`` included), looked up when the policy is compiled
  and again every ``ttl_s`` by :meth:`Peers.refresh_names` (never on the event path). The sensor
  does not read DNS answers, so learning records addresses, never names: a name enters a policy by
  editing it.

Addresses are reused: an address learned before its container was known is named after the
workload only if it was first seen after that container started (:meth:`Peers.gained`).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping

from stockade.model.clock import SYSTEM, Clock
from stockade.policy.compile import Network
from stockade.policy.model import Peer, WorkloadPolicy

__all__ = ["Lookup", "Peers", "peer_refs", "system_lookup"]

log = logging.getLogger("stockade.zerotrust")

#: a DNS name -> its addresses now (empty when it does not resolve)
Lookup = Callable[[str], frozenset[str]]


def system_lookup(name: str) -> frozenset[str]:
    """The addresses `name` resolves to with the system resolver (none when it does not)."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(str(info[4][0]).split("%", 1)[0] for info in infos)


def peer_refs(policy: WorkloadPolicy) -> set[str]:
    """The workload and DNS peers a policy's network rules name (``workload:ID``, ``dns:NAME``)."""
    out: set[str] = set()
    for rule in policy.spec.network:
        p = rule.peer
        if p is not None and p.workload:
            out.add(f"workload:{p.workload}")
        elif p is not None and p.dns:
            out.add(f"dns:{p.dns}")
    return out


def _nets(addresses: Iterable[str]) -> list[Network]:
    return sorted((ipaddress.ip_network(a) for a in addresses), key=lambda n: (n.version, n))


class Peers:
    """Addresses of workloads and DNS names (module docstring). Thread-safe: the event path reads
    :meth:`workload_at` while the housekeeping thread updates."""

    def __init__(self, *, lookup: Lookup = system_lookup, ttl_s: float = 30.0, clock: Clock = SYSTEM) -> None:
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        #: address -> workload id (replaced whole on update: reads need no lock)
        self._at: dict[str, str] = {}
        self._of: dict[str, frozenset[str]] = {}
        #: DNS name -> (its addresses, when looked up)
        self._names: dict[str, tuple[frozenset[str], float]] = {}

    def workload_at(self, ip: str) -> str | None:
        """The workload whose running container has address `ip` (None: none known)."""
        return self._at.get(ip)

    def addresses(self, workload: str) -> frozenset[str]:
        """The addresses of a workload's running containers."""
        return self._of.get(workload, frozenset())

    def update(self, containers: Mapping[str, tuple[str, frozenset[str]]]) -> set[str]:
        """Take the running containers (id -> (workload, its addresses)); the workloads whose
        addresses changed."""
        of: dict[str, set[str]] = {}
        at: dict[str, str] = {}
        for workload, addrs in containers.values():
            of.setdefault(workload, set()).update(addrs)
            for a in addrs:
                at[a] = workload
        new_of = {w: frozenset(a) for w, a in of.items() if a}
        with self._lock:
            changed = {w for w in new_of.keys() | self._of.keys() if new_of.get(w) != self._of.get(w)}
            self._of, self._at = new_of, at
        return changed

    def gained(self, before: Mapping[str, frozenset[str]]) -> dict[str, str]:
        """Addresses a workload has now and did not have in `before` (address -> workload)."""
        return {a: w for w, addrs in self._of.items() for a in addrs - before.get(w, frozenset())}

    def snapshot(self) -> dict[str, frozenset[str]]:
        """Each workload's addresses now."""
        return dict(self._of)

    def resolve(self, peer: Peer) -> list[Network]:
        """What a rule's workload or DNS peer stands for now (a CompiledPolicy's resolver)."""
        if peer.workload:
            return _nets(self._of.get(peer.workload, frozenset()))
        if peer.dns:
            return _nets(self._name(peer.dns))
        return []

    def _name(self, name: str) -> frozenset[str]:
        with self._lock:
            known = self._names.get(name)
        if known is not None:
            return known[0]
        addrs = self.lookup(name)
        with self._lock:
            self._names[name] = (addrs, self.clock.monotonic())
        if not addrs:
            log.warning(
                "zero trust: DNS name %r does not resolve on this node: its rules match nothing", name
            )
        return addrs

    def refresh_names(self, names: Iterable[str]) -> set[str]:
        """Look up again the names (of the policies in force) older than the TTL; those whose
        addresses changed. Names no longer used are forgotten."""
        wanted = set(names)
        now = self.clock.monotonic()
        with self._lock:
            self._names = {n: v for n, v in self._names.items() if n in wanted}
            stale = [n for n in wanted if n not in self._names or now - self._names[n][1] >= self.ttl_s]
            old = {n: self._names[n][0] for n in stale if n in self._names}
        changed: set[str] = set()
        for n in stale:
            addrs = self.lookup(n)
            with self._lock:
                self._names[n] = (addrs, now)
            if n in old and old[n] != addrs:
                changed.add(n)
        return changed
