"""What every sensor backend provides, and how loss is accounted.

A backend (eBPF, proc connector, fanotify, conntrack) turns kernel activity into *raw events*:
flat dicts keyed by Falco field names, as in a recording (docs/events.md), plus a few private keys
that enrichment consumes (they start with "_" and never reach rules):

* ``_cgroup_id`` (int), ``_cgroup_path`` (str, the process's cgroup path when known),
  ``_mntns`` (int), ``_pidns`` (int): for container attribution;
* ``_start_ns`` (int, process start time), ``_pstart_ns`` (int, a fork's parent's start time),
  ``_exe_upper`` (bool, exe on the overlay upper layer);
* ``_netns``, ``_ct_id``, ``_inode`` (conntrack), ``_fanotify_mask`` (fanotify);
* ``_novel``, for a cgroup watched for learning (:meth:`Backend.set_watched`) only: True when the
  event's operation was new to it, False when it is a repeat (delivered because a rule wants it, or
  an exec); its other repeats are not delivered at all. Absent: nothing was learned in the kernel.

Every private key is listed in ``PRIVATE_KEYS`` (a test checks the backends' sources).

Every raw event has at least ``evt.type``, ``evt.dir`` ("<"), ``evt.time`` (ns since the epoch),
``proc.pid``, ``thread.tid`` and, where the backend knows them, ``proc.ppid``, ``user.uid``,
``user.gid``, ``user.loginuid``, ``proc.name`` (comm), ``proc.exepath``, ``proc.cmdline``,
``evt.rawres``. The process table (:mod:`stockade.sensor.proctable`) adds ancestry, and container
attribution (:mod:`stockade.sensor.containers`) adds ``container.*`` and ``k8s.*``.

A backend never drops silently: what it loses (ring buffer full, ENOBUFS on netlink, fanotify queue
overflow) is counted in ``stats.lost`` by cause, and the runtime raises an alert for it.

A backend is a subclass of :class:`Backend` registered in :mod:`stockade.sensor.registry`. Its class
attributes say how a plan uses it (its :data:`Role`, whether its events must be queued before the
others', its reader's priority, whether it prefilters failed calls or watches containers), so the
runtime (:mod:`stockade.runtime.sensing`) never names a backend.
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

from stockade.errors import StockadeError
from stockade.model.errorlog import ErrorLog
from stockade.rules.interest import InterestPlan, Target

if TYPE_CHECKING:
    from typing import Self

    from stockade.config import SensorConfig
    from stockade.sensor.containers.info import ContainerInfo

__all__ = [
    "PRIVATE_KEYS",
    "ROLES",
    "WATCH_LEARN",
    "WATCH_SYSCALLS",
    "Backend",
    "BackendContext",
    "BackendStats",
    "BackendStatsDict",
    "Capabilities",
    "RawEvent",
    "Role",
    "SensorError",
]

#: one raw event: Falco field name (or private ``_`` key) -> value
RawEvent = dict[str, Any]

#: every private key a backend may put in a raw event (enrichment consumes and removes them)
PRIVATE_KEYS = (
    "_cgroup_id",
    "_cgroup_path",
    "_mntns",
    "_pidns",
    "_netns",
    "_start_ns",
    "_pstart_ns",
    "_exe_upper",
    "_fanotify_mask",
    "_ct_id",
    "_inode",
    "_novel",
)

#: :meth:`Backend.set_watched` flags: learn the cgroup's operations (each distinct one delivered once,
#: with ``_novel``) ...
WATCH_LEARN = 1
#: ... and record every syscall it makes (:meth:`Backend.syscalls_used`)
WATCH_SYSCALLS = 2

#: how a plan uses a backend: ``primary`` sees everything alone (``sensor.backend`` auto and ebpf
#: run the first primary that can run); ``fallback`` sees one part (every fallback that can run
#: runs, together); ``replay`` is never planned (it is given to the runner directly, as tests do)
Role = Literal["primary", "fallback", "replay"]
ROLES: tuple[Role, ...] = ("primary", "fallback", "replay")


class SensorError(StockadeError):
    """A sensor backend that cannot be chosen, started or read."""

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


class BackendStatsDict(TypedDict):
    """A backend's counters as status shows them (:meth:`BackendStats.to_dict`)."""

    events: int
    lost: dict[str, int]
    lost_total: int
    filtered: dict[str, int]
    filtered_total: int
    filtered_by_cause: dict[str, int]
    incomplete: dict[str, int]
    errors: int
    last_errors: list[str]


@dataclass(slots=True)
class BackendStats:
    """A backend's counters: events delivered, lost (by cause), filtered on purpose, problems."""

    events: int = 0
    #: events lost, by cause ("ringbuf_full", "netlink_enobufs", "fanotify_overflow", ...)
    lost: Counter[str] = field(default_factory=Counter)
    #: records a kernel prefilter dropped on purpose because no loaded rule can match them, by event
    #: type (the eBPF backend's failed calls: stockade.rules.prefilter). Not losses.
    filtered: Counter[str] = field(default_factory=Counter)
    #: the same, by cause: "failed_call" (stockade.rules.prefilter), "no_interest" (a path no rule
    #: cares about: stockade.rules.interest)
    filtered_by_cause: Counter[str] = field(default_factory=Counter)
    #: problems that are not lost events (unreadable records, a directory not watched, ...)
    problems: ErrorLog = field(default_factory=lambda: ErrorLog("sensor"))
    #: events delivered with some of their facts unknown, by cause (an exec whose arguments the
    #: kernel cut or /proc no longer had, ...): said in the event itself, and counted here
    incomplete: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        """How many problems were reported."""
        return self.problems.total

    @property
    def last_errors(self) -> list[str]:
        """The latest problems, oldest first."""
        return self.problems.errors

    def error(self, msg: str) -> None:
        """Report a problem that is not a lost event."""
        self.problems.report(msg)

    def to_dict(self) -> BackendStatsDict:
        """The counters with their totals (the keys of :class:`BackendStatsDict`)."""
        return {
            "events": self.events,
            "lost": dict(self.lost),
            "lost_total": sum(self.lost.values()),
            "filtered": dict(self.filtered),
            "filtered_total": sum(self.filtered.values()),
            "filtered_by_cause": dict(self.filtered_by_cause),
            "incomplete": dict(self.incomplete),
            "errors": self.errors,
            "last_errors": list(self.last_errors),
        }


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What the runtime builds a backend from: the ``sensor:`` settings and the plan's decisions."""

    settings: SensorConfig
    #: the syscalls whose failed calls no active rule can match (for a backend that prefilters)
    drop_failed: frozenset[str] = frozenset()
    #: the calls on paths no active rule cares about (for a backend with `interest_targets`)
    interest: InterestPlan | None = None
    #: the fields the active rules read (None: not known): a backend reads what costs per event
    #: (the environment of each exec, say) only when some rule reads it
    fields: frozenset[str] | None = None


class Backend(abc.ABC):
    """A sensor backend: kernel activity (or a recording of it) as batches of raw events.

    A subclass sets :attr:`name`, :attr:`title` and :attr:`role`, the planning attributes that
    differ from the defaults, and implements :meth:`probe`, :meth:`start`, :meth:`poll` and
    :meth:`close`; it is registered by one line in :mod:`stockade.sensor.registry`.
    """

    #: its name in the registry, plans, status and loss alerts
    name: ClassVar[str]
    #: its name in messages ("eBPF", "proc connector")
    title: ClassVar[str]
    #: how plans use it (:data:`Role`)
    role: ClassVar[Role]
    #: it reports the exec/fork/exit events that other backends' events follow from: while others
    #: run, its events are queued before any batch of theirs (causal order); it needs :meth:`fileno`
    causal_first: ClassVar[bool] = False
    #: its reader races short-lived processes for /proc: the reader thread's nice value (root may
    #: raise its priority) and a 1 ms GIL switch interval; None: an ordinary thread
    reader_nice: ClassVar[int | None] = None
    #: it can drop in the kernel the failed calls no rule can match (``sensor.kernel_prefilter``):
    #: it is built with them in :attr:`BackendContext.drop_failed`
    prefilters_failed: ClassVar[bool] = False
    #: the syscalls whose calls it can drop in the kernel by their path (the interest filter,
    #: ``sensor.kernel_interest_filter``): name -> what its calls say; it is built with the plan in
    #: :attr:`BackendContext.interest`
    interest_targets: ClassVar[Mapping[str, Target]] = {}
    #: it watches the root filesystem of each container seen (:meth:`watch_container`)
    watches_containers: ClassVar[bool] = False
    #: it learns in the kernel for the cgroups given to :meth:`set_watched`: each distinct operation
    #: is delivered once, flagged ``_novel``; without it a learner must look at every event
    learns_in_kernel: ClassVar[bool] = False

    stats: BackendStats

    @classmethod
    def from_context(cls, ctx: BackendContext) -> Self:
        """The backend as the runtime builds it (default: no settings of its own)."""
        del ctx
        return cls()

    @staticmethod
    @abc.abstractmethod
    def probe() -> Capabilities:
        """Can this backend run here? (Without starting it; never raises.)"""

    @abc.abstractmethod
    def start(self, evttypes: set[str] | None = None) -> None:
        """Start producing events; `evttypes` (None = all it can) selects what the rules need."""

    @abc.abstractmethod
    def poll(self, timeout_s: float = 0.1) -> list[RawEvent]:
        """The raw events available now (a batch), waiting at most `timeout_s` for the first."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and release everything (safe to call twice, or before start)."""

    def fileno(self) -> int:
        """A descriptor readable when events wait (needed of a `causal_first` backend)."""
        raise SensorError(f"the {self.title} backend has no descriptor to wait on")

    @property
    def dropping_failed(self) -> frozenset[str]:
        """The syscalls whose failed calls the kernel drops now (empty before start)."""
        return frozenset()

    @property
    def dropping_paths(self) -> dict[str, int]:
        """The syscalls whose calls on uninteresting paths the kernel drops now, with the classes."""
        return {}

    def set_interest(self, plan: InterestPlan) -> None:
        """Replace the interest filter while running (a backend with `interest_targets`)."""
        del plan

    def set_watched(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch these cgroups (cgroup2 id -> WATCH_* flags) for learning, and only these (a
        backend that `learns_in_kernel`)."""
        del cgroup_ids

    def set_watched_parents(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch the cgroups below these (cgroup2 id -> WATCH_* flags), each as if it were given to
        :meth:`set_watched`, and only these (a backend that `learns_in_kernel`)."""
        del cgroup_ids

    def syscalls_used(self, cgroup_id: int) -> set[str]:
        """The syscalls a cgroup watched with WATCH_SYSCALLS made so far (empty if not known)."""
        del cgroup_id
        return set()

    def watch_container(self, info: ContainerInfo) -> list[str]:
        """Watch a new container's root filesystem (for a `watches_containers` backend); the host
        path prefixes, ending in "/", under which its events name the container's files."""
        del info
        return []
