"""Running the native sensor: pick the best backend this node supports, say which and what it cannot
see, read its events in batches, enrich them (process tree, container), and feed the pipeline. Events
the kernel side lost are counted per backend and raised as an alert: a blind spot is a security event.

Nothing here names a backend: the registry (:data:`stockade.sensor.registry.BACKENDS`) lists them
and each backend's class attributes (:class:`stockade.sensor.interface.Backend`) say how a plan
uses it. Tests give the runner backends directly (``backends=[RecordedBackend(...)]``).
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, assert_never

from stockade.config import SensorChoice, StockadeConfig
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.model.event import Event
from stockade.plugins import PluginError, Registry
from stockade.rules.ast import Node
from stockade.rules.interest import InterestPlan, Target, plan_interest
from stockade.rules.prefilter import failed_droppable
from stockade.sensor.enrich import Enricher
from stockade.sensor.interface import (
    Backend,
    BackendContext,
    Capabilities,
    RawEvent,
    Role,
    SensorError,
)
from stockade.sensor.registry import BACKENDS

__all__ = [
    "LOSS_RULE",
    "PROCESS_EVTTYPES",
    "SensorPipeline",
    "SensorPlan",
    "SensorRunner",
    "loss_alert",
    "plan",
]

LOSS_RULE = "Stockade sensor lost events"
#: what the process table is fed with (dash forks with vfork)
PROCESS_EVTTYPES = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork", "procexit"})
#: containers whose root-filesystem paths are remembered (the oldest are forgotten beyond this)
MAX_CONTAINERS = 4096


#: fields that hold a path (fanotify reports host paths into a container's root filesystem)
PATH_FIELDS = (
    "fd.name",
    "evt.arg.name",
    "evt.arg.path",
    "evt.arg.filename",
    "evt.arg.oldpath",
    "evt.arg.newpath",
    "evt.arg.linkpath",
    "fs.path.name",
    "fs.path.source",
    "fs.path.target",
)


class SensorPipeline(Protocol):
    """What the sensor feeds: the runtime's :class:`~stockade.runtime.pipeline.Pipeline`, or a test's."""

    def handle(self, event: Event) -> object:
        """Evaluate one event."""
        ...

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        """Take alerts raised outside the engine (the sensor's loss alerts)."""
        ...


def _container_paths(data: dict[str, Any], roots: list[str]) -> None:
    """Host paths into a container's root filesystem or its upper layer (`roots`, ending in "/")
    -> the paths the container sees."""
    for k in PATH_FIELDS:
        v = data.get(k)
        if v.__class__ is str:
            for root in roots:
                if v.startswith(root):
                    data[k] = v[len(root) - 1 :]
                    break


def _probe(name: str, cls: type[Backend]) -> Capabilities:
    """`cls.probe()`, with a probe that raises said as a reason."""
    try:
        return cls.probe()
    except Exception as e:
        return Capabilities(name, False, f"probe failed: {type(e).__name__}: {e}")


@dataclass(slots=True)
class SensorPlan:
    """The backends chosen, what was probed (and why not), and what the rules need but will not get."""

    backends: list[str]
    capabilities: dict[str, Capabilities]
    #: event types the rules need that no chosen backend provides
    missing_evttypes: set[str] = field(default_factory=set)
    missing_fields: set[str] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        """The plan as status and start-up messages show it."""
        return {
            "backend": "+".join(self.backends) if self.backends else None,
            "probed": {
                n: {"available": c.available, "reason": c.reason or None}
                for n, c in self.capabilities.items()
            },
            "missing_evttypes": sorted(self.missing_evttypes),
            "missing_fields": sorted(self.missing_fields),
        }

    @classmethod
    def of(cls, chosen: list[str], caps: dict[str, Capabilities], needed: set[str] | None) -> SensorPlan:
        """The plan running `chosen` (probed in `caps`) for rules needing `needed`."""
        provided: set[str] = set()
        for n in chosen:
            provided |= caps[n].evttypes
        # a field one backend lacks another may give: report what all lack
        lacking = [set(caps[n].missing_fields) for n in chosen]
        missing_fields = set.intersection(*lacking) if lacking else set()
        return cls(chosen, caps, (needed or set()) - provided, missing_fields)


def _roles(choice: SensorChoice) -> tuple[tuple[Role, ...], bool]:
    """The roles `choice` tries in turn, and whether one of them must run."""
    match choice:
        case "none":
            return (), False
        case "ebpf":
            return ("primary",), True
        case "auto":
            return ("primary", "fallback"), False
        case "fallback":
            return ("fallback",), False
        case _:
            assert_never(choice)


def _runs_alone(role: Role) -> bool:
    """Whether the first backend of `role` that can run is the only one chosen."""
    match role:
        case "primary":
            return True
        case "fallback" | "replay":
            return False
        case _:
            assert_never(role)


def plan(choice: SensorChoice, needed: set[str] | None, registry: Registry[Backend] = BACKENDS) -> SensorPlan:
    """Which backends to run for `choice` (auto | ebpf | fallback | none) and rules needing `needed`.

    Each role is tried in turn (auto: primary, then fallback), its backends probed in registry
    order; the first role with a backend that can run is used: the first such primary alone, or
    every such fallback together. A backend that cannot be imported is probed as unavailable."""
    roles, required = _roles(choice)
    if not roles:
        return SensorPlan([], {})
    caps: dict[str, Capabilities] = {}
    classes: dict[str, type[Backend]] = {}
    for name in registry:
        try:
            classes[name] = registry.load(name)
        except (PluginError, ImportError) as e:
            caps[name] = Capabilities(name, False, f"not built or not installed: {e}")
    chosen: list[str] = []
    for role in roles:
        for name in (n for n, c in classes.items() if c.role == role):
            caps[name] = _probe(name, classes[name])
            if caps[name].available:
                chosen.append(name)
                if _runs_alone(role):
                    break
        if chosen:
            break
    if required and not chosen:
        why = [f"the {_title(n, classes)} backend cannot run here: {c.reason}" for n, c in caps.items()]
        raise SensorError("; ".join(why) or f"no {' or '.join(roles)} sensor backend is registered")
    return SensorPlan.of(chosen, caps, needed)


def _title(name: str, classes: dict[str, type[Backend]]) -> str:
    cls = classes.get(name)
    return cls.title if cls is not None else name


class SensorRunner:
    """Backends in their own threads, one consumer feeding the pipeline's `handle`.

    `backends` (tests, tools): run these instead of planning from ``cfg.sensor.backend``;
    `enricher`: the process-table and container enricher (default: the real one, over /proc)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        pipeline: SensorPipeline,
        needed: set[str] | None,
        *,
        backends: Sequence[Backend] | None = None,
        enricher: Enricher | None = None,
        registry: Registry[Backend] = BACKENDS,
        extra_interest: Sequence[Node] = (),
    ) -> None:
        self.cfg = cfg
        self.pipeline = pipeline
        self.needed = needed
        self._given = list(backends) if backends is not None else None
        if self._given is None:
            self.plan = plan(cfg.sensor.backend, needed, registry)
            self._classes = {n: registry.load(n) for n in self.plan.backends}
        else:
            self._classes = {b.name: type(b) for b in self._given}
            if len(self._classes) != len(self._given):
                raise SensorError(f"two backends given under one name: {[b.name for b in self._given]}")
            caps = {n: _probe(n, c) for n, c in self._classes.items()}
            self.plan = SensorPlan.of(list(self._classes), caps, needed)
        #: syscalls whose failed calls a prefiltering backend drops in the kernel (no active rule can
        #: match them)
        self.drop_failed = _drop_failed(cfg, pipeline, self.plan, self._classes, needed)
        #: the calls on paths no active rule cares about that a backend drops in the kernel
        #: conditions the interest filter keeps calls for besides the rules' (package-load tracking)
        self.extra_interest = tuple(extra_interest)
        self.interest = interest_plan(cfg, pipeline, self._targets(), self.extra_interest)
        self.backends: dict[str, Backend] = {}
        #: the backend whose events are queued before the others' batches (when others run)
        self._first: Backend | None = None
        #: the backends that watch the root filesystems of the containers seen
        self._watchers: list[Backend] = []
        self._q = EventQueue(cfg.sensor.queue_events)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: held while a batch is read and queued in causal order (see _produce)
        self._order = threading.Lock()
        self._reported_lost: dict[str, int] = {}
        #: batches the consumer could not keep up with (the queue was full): counted, never silent
        self.queue_drops = 0
        self.events = 0
        #: events that enrichment or the pipeline failed on (each one counted, the sensor goes on)
        self.consume_errors = ErrorLog("sensor", logger="stockade.sensor")
        self.enricher = enricher if enricher is not None else _enricher()
        self._enrich = self.enricher.enrich if self.enricher is not None else _strip
        #: containers seen (full id); their root filesystems get a watch from the watchers
        self._containers: OrderedDict[str, None] = OrderedDict()
        #: container full id -> its root filesystem (and upper layer) on the host, with a trailing "/"
        self._roots: dict[str, list[str]] = {}

    def _build(self) -> list[Backend]:
        if self._given is not None:
            return self._given
        ctx = BackendContext(self.cfg.sensor, self.drop_failed, self.interest)
        return [self._classes[n].from_context(ctx) for n in self.plan.backends]

    def start(self) -> None:
        """Start the backends, a reader thread for each and the consumer."""
        # the process table needs the process events whatever the rules read
        wanted = None if self.needed is None else set(self.needed) | PROCESS_EVTTYPES
        for b in self._build():
            b.start(wanted)
            self.backends[b.name] = b
        if len(self.backends) > 1:
            self._first = next((b for b in self.backends.values() if b.causal_first), None)
        self._watchers = [b for b in self.backends.values() if b.watches_containers]
        for name, b in self.backends.items():
            t = threading.Thread(target=self._produce, args=(b,), name=f"stockade-sensor-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        c = threading.Thread(target=self._consume, name="stockade-sensor-consumer", daemon=True)
        c.start()
        self._threads.append(c)

    def _produce(self, b: Backend) -> None:
        """Read backend `b` into the queue, in causal order with the causal-first backend.

        Without eBPF, exec comes from the proc connector and opens from fanotify, on two sockets read
        by two threads: an open read first would be enriched with the facts of the program before
        its exec (a runtime's `exec` process in the host's cgroup, say). So the causal-first backend
        reads and queues under `_order`, and every other backend, once it has read a batch, first
        drains the causal-first one under the same lock: whatever process event the kernel sent
        before the batch's events is queued before them."""
        if b.reader_nice is not None:
            _hurry(b.reader_nice)
        step = self._step_first if b is self._first else self._step
        while not self._stop.is_set():
            try:
                step(b)
            except Exception as e:
                b.stats.error(f"poll: {type(e).__name__}: {e}")
                self._stop.wait(0.2)

    def _step_first(self, b: Backend) -> None:
        """The causal-first backend: wait outside the lock, read and queue under it."""
        ready, _, _ = select.select([b.fileno()], [], [], 0.2)
        if ready:
            with self._order:
                self._put(b, b.poll(0))

    def _step(self, b: Backend) -> None:
        """Any other backend: a batch, queued after what the causal-first backend has now."""
        batch = b.poll(0.2)
        if not batch:
            return
        first = self._first
        with self._order:
            if first is not None:
                self._put(first, first.poll(0))
            self._put(b, batch)

    def _put(self, b: Backend, batch: list[RawEvent]) -> None:
        if batch and not self._q.put(batch, timeout=1.0):
            self.queue_drops += len(batch)
            b.stats.lost["agent_queue_full"] += len(batch)

    def _consume(self) -> None:
        last_loss_check = time.monotonic()
        while not self._stop.is_set() or self._q.events:
            batch = self._q.get(timeout=0.2)
            for raw in batch:
                try:
                    self._one(raw)
                except Exception as e:  # one bad event never stops the sensor: counted, reported
                    self.consume_errors.report(f"{type(e).__name__}: {e}")
            now = time.monotonic()
            if now - last_loss_check >= 1.0:
                last_loss_check = now
                self.check_loss()

    def _one(self, raw: RawEvent) -> None:
        # the kernel's learning flag (watched cgroups only) survives enrichment for zero trust
        novel = raw.get("_novel")
        data = self._enrich(raw)
        if novel is not None:
            data["_novel"] = novel
        self.events += 1
        cid = data.get("container.full_id")
        if cid is not None:
            if cid not in self._containers:
                self._new_container(cid)
            roots = self._roots.get(cid)
            if roots:
                _container_paths(data, roots)
        self.pipeline.handle(Event("syscall", data, "sensor"))

    def _new_container(self, full_id: str) -> None:
        """A container seen for the first time: the watchers watch its root filesystem. One not
        described yet (its root unknown) is tried again on its next events."""
        watchers = self._watchers
        info = self.enricher.resolver.cached(full_id) if self.enricher is not None else None
        if watchers and info is not None and not info.complete:
            return
        self._containers[full_id] = None
        while len(self._containers) > MAX_CONTAINERS:
            old, _ = self._containers.popitem(last=False)
            self._roots.pop(old, None)
        if info is None:
            return
        roots = [prefix for b in watchers for prefix in b.watch_container(info)]
        if roots:
            self._roots[full_id] = roots

    def check_loss(self) -> None:
        """Raise one alert for every new batch of lost events, per backend and cause."""
        alerts = []
        for name, b in self.backends.items():
            for cause, n in list(b.stats.lost.items()):  # backend threads add causes meanwhile
                key = f"{name}:{cause}"
                new = n - self._reported_lost.get(key, 0)
                if new > 0:
                    self._reported_lost[key] = n
                    alerts.append(loss_alert(self.cfg.hostname, name, cause, new, n))
        if alerts:
            self.pipeline.ingest_alerts(alerts)

    @property
    def queue_depth(self) -> int:
        """Batches read from the backends and not yet consumed."""
        return self._q.batches

    @property
    def queued_events(self) -> int:
        """Events read from the backends and not yet consumed."""
        return self._q.events

    def status(self) -> dict[str, Any]:
        """The plan, the counters of the runner and of each backend, and what the kernel drops."""
        out = self.plan.describe()
        out["events"] = self.events
        out["queue_drops"] = self.queue_drops
        out["event_errors"] = {"total": self.consume_errors.total, "last": self.consume_errors.errors}
        out["backends"] = {n: b.stats.to_dict() for n, b in self.backends.items()}
        out["containers_seen"] = len(self._containers)
        if self.enricher is not None:
            out["enrichment"] = dict(self.enricher.stats)
        out["lost_total"] = sum(sum(list(b.stats.lost.values())) for b in self.backends.values())
        out["filtered_total"] = sum(sum(list(b.stats.filtered.values())) for b in self.backends.values())
        dropping = frozenset[str]().union(*(b.dropping_failed for b in self.backends.values()))
        out["kernel_prefilter"] = {"drop_failed": sorted(dropping)}
        paths = {n: c for b in self.backends.values() for n, c in b.dropping_paths.items()}
        out["kernel_interest_filter"] = {
            "syscalls": {n: _class_names(c) for n, c in sorted(paths.items())},
            "needles": len(self.interest.needles) if paths else 0,
        }
        return out

    def _targets(self) -> dict[str, Target]:
        """The syscalls the planned backends can drop by path, among those the rules need."""
        out: dict[str, Target] = {}
        for name in self.plan.backends:
            out.update(self._classes[name].interest_targets)
        if self.needed is not None:
            out = {n: t for n, t in out.items() if n in self.needed}
        return out

    def set_interest(self, plan: InterestPlan) -> None:
        """Replace the interest filter of the running backends (after a rule reload)."""
        self.interest = plan
        for b in self.backends.values():
            b.set_interest(plan)

    # -- learning in the kernel (zero trust: stockade.runtime.zerotrust) ----------------------------
    def _learners(self) -> list[Backend]:
        return [b for b in list(self.backends.values()) if b.learns_in_kernel]

    @property
    def learns_in_kernel(self) -> bool:
        """Whether a running backend deduplicates watched cgroups' operations in the kernel."""
        return bool(self._learners())

    def set_watched(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch these cgroups (cgroup2 id -> WATCH_* flags) in every backend that learns in the
        kernel (the whole set: the others are no longer watched)."""
        for b in self._learners():
            b.set_watched(cgroup_ids)

    def set_watched_parents(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch every cgroup below these (the directories that hold containers), from its first
        call: a container is learned before anyone has seen it."""
        for b in self._learners():
            b.set_watched_parents(cgroup_ids)

    def syscalls_used(self, cgroup_id: int) -> set[str]:
        """The syscalls a watched cgroup made (WATCH_SYSCALLS), as the kernel recorded them."""
        out: set[str] = set()
        for b in self._learners():
            out |= b.syscalls_used(cgroup_id)
        return out

    def learned_repeats(self, cgroup_id: int) -> int:
        """A watched cgroup's repeats the kernel did not hand on as new."""
        return sum(int(getattr(b, "learned_repeats", lambda _c: 0)(cgroup_id)) for b in self._learners())

    def refilter(self) -> None:
        """Derive the interest filter from the pipeline's rules again (they were reloaded), apply it."""
        self.set_interest(interest_plan(self.cfg, self.pipeline, self._targets(), self.extra_interest))

    def close(self) -> None:
        """Stop the threads, close every backend, and raise the last losses."""
        self._stop.set()
        for t in self._threads:
            t.join(3.0)
        for b in self.backends.values():
            try:
                b.close()
            except Exception:
                pass
        self.check_loss()


class EventQueue:
    """Batches of raw events from the readers to the consumer, bounded by their events (memory).

    A batch that would go over the bound waits for room (a batch always fits an empty queue); if
    none is made within the timeout, :meth:`put` says so and the caller counts the batch lost."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self._items: deque[list[RawEvent]] = deque()
        self._events = 0
        self._cv = threading.Condition()

    @property
    def events(self) -> int:
        """Events queued."""
        return self._events

    @property
    def batches(self) -> int:
        """Batches queued."""
        return len(self._items)

    def put(self, batch: list[RawEvent], timeout: float) -> bool:
        """Queue `batch`, waiting at most `timeout` seconds for room; whether it was queued."""
        n = len(batch)
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._events and self._events + n > self.max_events:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            self._items.append(batch)
            self._events += n
            self._cv.notify_all()
        return True

    def get(self, timeout: float) -> list[RawEvent]:
        """The oldest batch, waiting at most `timeout` seconds for one (an empty list if none came)."""
        with self._cv:
            if not self._items:
                self._cv.wait(timeout)
                if not self._items:
                    return []
            batch = self._items.popleft()
            self._events -= len(batch)
            self._cv.notify_all()
        return batch


def _hurry(nice: int) -> None:
    """The calling thread reads /proc for each exec before the process is gone (the proc connector
    names only the pid): let the kernel run it before busy threads, and let it take the GIL from
    the consumer within a millisecond (Python's default is 5 ms; `cat` lives about one)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        pass
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))


def loss_alert(hostname: str, backend: str, cause: str, new: int, total: int) -> Alert:
    """The Critical alert saying `new` events of `backend` were lost to `cause`."""
    return Alert(
        time_ns=time.time_ns(),
        rule=LOSS_RULE,
        priority="Critical",
        output=f"The {backend} sensor lost {new} events ({cause}; {total} since start): activity in that "
        "time is not seen by the rules",
        output_fields={
            "sensor.backend": backend,
            "sensor.cause": cause,
            "sensor.lost": new,
            "sensor.lost_total": total,
        },
        source="syscall",
        tags=["stockade", "sensor", "blind_spot"],
        hostname=hostname,
        workload="host",
    )


def _drop_failed(
    cfg: StockadeConfig,
    pipeline: SensorPipeline,
    p: SensorPlan,
    classes: dict[str, type[Backend]],
    needed: set[str] | None,
) -> frozenset[str]:
    """With sensor.kernel_prefilter and a prefiltering backend: the syscalls it follows whose failed
    calls no active rule of the pipeline's engine can match (decided once, at start, as the event
    types are)."""
    engine = getattr(pipeline, "engine", None)
    prefiltering = [n for n in p.backends if classes[n].prefilters_failed]
    if (
        not cfg.sensor.kernel_prefilter
        or engine is None
        or _every_event_consumed(pipeline)
        or not prefiltering
    ):
        return frozenset()
    types = frozenset[str]().union(*(p.capabilities[n].evttypes for n in prefiltering))
    if needed is not None:
        types = types & (needed | PROCESS_EVTTYPES)
    return failed_droppable(engine.conditions("syscall"), types)


_CLASS_NAMES = ("read_ok", "other_ok", "read_failed", "other_failed")


def _class_names(mask: int) -> list[str]:
    return [n for i, n in enumerate(_CLASS_NAMES) if (mask >> i) & 1]


def _every_event_consumed(pipeline: object) -> bool:
    """Whether the pipeline needs every event, not only those rules match: it has no engine, or it
    stores every event (``storage.record_events: all``)."""
    return getattr(pipeline, "engine", None) is None or getattr(pipeline, "record_events", "") == "all"


def interest_plan(
    cfg: StockadeConfig, pipeline: object, targets: Mapping[str, Target], extra: Sequence[Node] = ()
) -> InterestPlan:
    """With sensor.kernel_interest_filter: what the kernel may drop of `targets` because no active
    rule of the pipeline's engine (and no condition of `extra`) cares about the path."""
    if not cfg.sensor.kernel_interest_filter or not targets or _every_event_consumed(pipeline):
        return InterestPlan()
    engine: Any = getattr(pipeline, "engine", None)
    return plan_interest([*engine.conditions("syscall"), *extra], targets)


def _enricher() -> Enricher | None:
    """The process-table and container enricher, or None if it cannot start."""
    try:
        enricher = Enricher()
        enricher.start()
    except OSError:
        return None
    return enricher


def _strip(raw: RawEvent) -> RawEvent:
    return {k: v for k, v in raw.items() if not k.startswith("_")}
