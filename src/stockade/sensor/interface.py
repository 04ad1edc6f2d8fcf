"""What every sensor backend provides, and how loss is accounted.

A backend (eBPF, proc connector, fanotify, conntrack) turns kernel activity into *raw events*:
flat dicts keyed by Falco field names, as in a recording (docs/events.md), plus a few private keys
that enrichment consumes (they start with "_" and never reach rules):

* ``_cgroup_id`` (int), ``_cgroup_path`` (str, the process's cgroup path when known),
  ``_mntns`` (int), ``_pidns`` (int): for container attribution;
* ``_start_ns`` (int, process start time), ``_exe_upper`` (bool, exe on the overlay upper layer);
* ``_netns``, ``_ct_id``, ``_inode`` (conntrack), ``_fanotify_mask`` (fanotify).

Every private key is listed in ``PRIVATE_KEYS`` (a test checks the backends' sources).

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
from stockade.model.errorlog import ErrorLog

__all__ = ["PRIVATE_KEYS", "Backend", "BackendStats", "Capabilities", "SensorError"]

#: every private key a backend may put in a raw event (enrichment consumes and removes them)
PRIVATE_KEYS = (
    "_cgroup_id",
    "_cgroup_path",
    "_mntns",
    "_pidns",
    "_netns",
    "_start_ns",
    "_exe_upper",
    "_fanotify_mask",
    "_ct_id",
    "_inode",
)


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
    #: records a kernel prefilter dropped on purpose because no loaded rule can match them, by event
    #: type (the eBPF backend's failed calls: stockade.rules.prefilter). Not losses.
    filtered: Counter[str] = field(default_factory=Counter)
    #: problems that are not lost events (unreadable records, a directory not watched, ...)
    problems: ErrorLog = field(default_factory=lambda: ErrorLog("sensor"))
    #: events delivered with some of their facts unknown, by cause (an exec whose arguments the
    #: kernel cut or /proc no longer had, ...): said in the event itself, and counted here
    incomplete: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        return self.problems.total

    @property
    def last_errors(self) -> list[str]:
        return self.problems.errors

    def error(self, msg: str) -> None:
        self.problems.report(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "lost": dict(self.lost),
            "lost_total": sum(self.lost.values()),
            "filtered": dict(self.filtered),
            "filtered_total": sum(self.filtered.values()),
            "incomplete": dict(self.incomplete),
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
