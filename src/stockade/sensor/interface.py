"""What every sensor backend provides, and how loss is accounted.

A backend (eBPF, proc connector, fanotify, conntrack) turns kernel activity into *raw events*:
flat dicts keyed by Falco field names, as in a recording (docs/events.md), plus a few private keys
that enrichment consumes (they start with "_" and never reach rules):

* ``_cgroup_id`` (int), ``_cgroup_path`` (str, the process's cgroup path when known),
  ``_mntns`` (int), ``_pidns`` (int): for container attribution;
* ``_start_ns`` (int, process start time), ``_exe_upper`` (bool, exe on the overlay upper layer).

Every raw event has at least ``evt.type``, ``evt.dir`` ("<"), ``evt.time`` (ns since the epoch),
``proc.pid``, ``thread.tid`` and, where the backend knows them, ``proc.ppid``, ``user.uid``,
``user.gid``, ``user.loginuid``, ``proc.name`` (comm), ``proc.exepath``, ``proc.cmdline``,
``evt.rawres``. The process table (:mod:`stockade.sensor.proctable`) adds ancestry, and container
attribution (:mod:`stockade.sensor.containers`) adds ``container.*`` and ``k8s.*``.

A backend never drops silently: what it loses (ring buffer full, ENOBUFS on netlink, fanotify queue
overflow) is counted in ``stats.lost`` by cause, and the runtime raises an alert for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from stockade.errors import StockadeError

__all__ = ["Backend", "BackendStats", "Capabilities", "SensorError"]


class SensorError(StockadeError):
    title = "Sensor error"


@dataclass(slots=True)
class Capabilities:
    """What a backend can provide on this node (said at start-up, shown in status)."""

    name: str
    available: bool
    #: why not, when not available ("needs root", "BPF not permitted: EPERM", ...)
    reason: str = ""
    #: event types it can produce (Falco names: execve, openat, connect, procexit, ...)
    evttypes: frozenset[str] = frozenset()
    #: fields it cannot fill (so rules reading them will see them missing)
    missing_fields: frozenset[str] = frozenset()


@dataclass(slots=True)
class BackendStats:
    events: int = 0
    #: events lost, by cause ("ringbuf_full", "netlink_enobufs", "fanotify_overflow", ...)
    lost: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    last_errors: list[str] = field(default_factory=list)

    def error(self, msg: str) -> None:
        self.errors += 1
        if len(self.last_errors) >= 20:
            self.last_errors.pop(0)
        self.last_errors.append(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "lost": dict(self.lost),
            "lost_total": sum(self.lost.values()),
            "errors": self.errors,
            "last_errors": list(self.last_errors),
        }


class Backend(Protocol):
    name: str
    stats: BackendStats

    @staticmethod
    def probe() -> Capabilities:
        """Can this backend run here? (Without starting it.)"""
        ...

    def start(self, evttypes: set[str] | None = None) -> None:
        """Start producing events; `evttypes` (None = all it can) selects what the rules need."""
        ...

    def poll(self, timeout_s: float = 0.1) -> list[dict[str, Any]]:
        """The raw events available now (a batch), waiting at most `timeout_s` for the first."""
        ...

    def close(self) -> None: ...
