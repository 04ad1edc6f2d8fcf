"""Running the native sensor: pick the best backend this node supports, say which and what it cannot
see, read its events in batches, enrich them (process tree, container), and feed the pipeline. Events
the kernel side lost are counted per backend and raised as an alert: a blind spot is a security event.
"""

from __future__ import annotations

import importlib
import os
import queue
import select
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from stockade.config import StockadeConfig
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.model.event import Event
from stockade.rules.prefilter import failed_droppable
from stockade.sensor.interface import Backend, Capabilities, SensorError

#: backend name -> (module, class)
BACKENDS = {
    "ebpf": ("stockade.sensor.ebpf.backend", "EbpfBackend"),
    "procconn": ("stockade.sensor.procconn", "ProcConnectorBackend"),
    "fanotify": ("stockade.sensor.fanotify", "FanotifyBackend"),
    "conntrack": ("stockade.sensor.conntrack", "ConntrackBackend"),
}
FALLBACKS = ("procconn", "fanotify", "conntrack")
#: the fallback backend that reports exec/fork/exit: read before the others' events (causal order)
PROCESS_BACKEND = "procconn"
#: its reader thread's nice value (root may raise it): it races short-lived processes for /proc
PROCESS_READER_NICE = -15
LOSS_RULE = "Stockade sensor lost events"
#: what the process table is fed with (dash forks with vfork)
#: containers whose root-filesystem paths are remembered (the oldest are forgotten beyond this)
MAX_CONTAINERS = 4096
PROCESS_EVTTYPES = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork", "procexit"})


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


def _backend_class(name: str) -> Any:
    mod, cls = BACKENDS[name]
    try:
        return getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError) as e:
        return e


def probe(name: str) -> Capabilities:
    cls = _backend_class(name)
    if isinstance(cls, Exception):
        return Capabilities(name, False, f"not built or not installed: {cls}")
    try:
        caps: Capabilities = cls.probe()
    except Exception as e:
        return Capabilities(name, False, f"probe failed: {type(e).__name__}: {e}")
    return caps


@dataclass(slots=True)
class SensorPlan:
    backends: list[str]
    capabilities: dict[str, Capabilities]
    #: event types the rules need that no chosen backend provides
    missing_evttypes: set[str] = field(default_factory=set)
    missing_fields: set[str] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "+".join(self.backends) if self.backends else None,
            "probed": {
                n: {"available": c.available, "reason": c.reason or None}
                for n, c in self.capabilities.items()
            },
            "missing_evttypes": sorted(self.missing_evttypes),
            "missing_fields": sorted(self.missing_fields),
        }


def plan(choice: str, needed: set[str] | None) -> SensorPlan:
    """Which backends to run for `choice` (auto | ebpf | fallback | none) and rules needing `needed`."""
    if choice == "none":
        return SensorPlan([], {})
    caps: dict[str, Capabilities] = {}
    chosen: list[str] = []
    if choice in ("auto", "ebpf"):
        caps["ebpf"] = probe("ebpf")
        if caps["ebpf"].available:
            chosen = ["ebpf"]
        elif choice == "ebpf":
            raise SensorError(f"the eBPF backend cannot run here: {caps['ebpf'].reason}")
    if not chosen:
        for n in FALLBACKS:
            caps[n] = probe(n)
            if caps[n].available:
                chosen.append(n)
    provided: set[str] = set()
    missing_fields: set[str] = set()
    for n in chosen:
        provided |= caps[n].evttypes
        missing_fields |= set(caps[n].missing_fields)
    if len(chosen) > 1:  # a field one backend lacks another may give: report what all lack
        missing_fields = set.intersection(*(set(caps[n].missing_fields) for n in chosen))
    missing = (needed or set()) - provided
    return SensorPlan(chosen, caps, missing, missing_fields)


class SensorRunner:
    """Backends in their own threads, one consumer feeding `handle` (the pipeline's)."""

    def __init__(self, cfg: StockadeConfig, pipeline: Any, needed: set[str] | None) -> None:
        self.cfg = cfg
        self.pipeline = pipeline
        self.needed = needed
        self.plan = plan(cfg.sensor.backend, needed)
        #: syscalls whose failed calls the eBPF backend drops in the kernel (no active rule can match them)
        self.drop_failed = _drop_failed(cfg, pipeline, self.plan, needed)
        self.backends: dict[str, Backend] = {}
        self._q: queue.Queue[tuple[str, list[dict[str, Any]]]] = queue.Queue(maxsize=256)
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
        self.enricher = _enricher()
        self._enrich = self.enricher.enrich if self.enricher is not None else _strip
        #: containers seen (full id); their root filesystems get a fanotify watch when it runs
        self._containers: OrderedDict[str, None] = OrderedDict()
        #: container full id -> its root filesystem on the host, with a trailing "/"
        self._roots: dict[str, list[str]] = {}

    def _make(self, name: str) -> Backend:
        cls = _backend_class(name)
        if name == "fanotify":
            return cls(list(self.cfg.sensor.watch_paths))  # type: ignore[no-any-return]
        if name == "conntrack":
            return cls(enable_tracking=self.cfg.sensor.conntrack_enable_tracking)  # type: ignore[no-any-return]
        if name == "ebpf":
            return cls(drop_failed=self.drop_failed)  # type: ignore[no-any-return]
        return cls()  # type: ignore[no-any-return]

    def start(self) -> None:
        # the process table needs the process events whatever the rules read
        wanted = None if self.needed is None else set(self.needed) | PROCESS_EVTTYPES
        for name in self.plan.backends:
            b = self._make(name)
            b.start(wanted)
            self.backends[name] = b
        for name, b in self.backends.items():
            t = threading.Thread(
                target=self._produce, args=(name, b), name=f"stockade-sensor-{name}", daemon=True
            )
            t.start()
            self._threads.append(t)
        c = threading.Thread(target=self._consume, name="stockade-sensor-consumer", daemon=True)
        c.start()
        self._threads.append(c)

    def _produce(self, name: str, b: Backend) -> None:
        """Read backend `b` into the queue, in causal order with the process backend.

        Without eBPF, exec comes from the proc connector and opens from fanotify, on two sockets read
        by two threads: an open read first would be enriched with the facts of the program before
        its exec (a runtime's `exec` process in the host's cgroup, say). So the process backend
        reads and queues under `_order`, and every other backend, once it has read a batch, first
        drains the process backend under the same lock: whatever process event the kernel sent
        before the batch's events is queued before them."""
        procs = self.backends.get(PROCESS_BACKEND) if name != PROCESS_BACKEND else None
        ordered = name == PROCESS_BACKEND and len(self.plan.backends) > 1
        if name == PROCESS_BACKEND:
            _hurry()
        while not self._stop.is_set():
            try:
                if ordered:
                    ready, _, _ = select.select([b.fileno()], [], [], 0.2)  # type: ignore[attr-defined]
                    if not ready:
                        continue
                    with self._order:
                        self._put(name, b, b.poll(0))
                    continue
                batch = b.poll(0.2)
                if not batch:
                    continue
                with self._order:
                    if procs is not None:
                        self._put(PROCESS_BACKEND, procs, procs.poll(0))
                    self._put(name, b, batch)
            except Exception as e:
                b.stats.error(f"poll: {type(e).__name__}: {e}")
                time.sleep(0.2)

    def _put(self, name: str, b: Backend, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        try:
            self._q.put((name, batch), timeout=1.0)
        except queue.Full:
            self.queue_drops += len(batch)
            b.stats.lost["agent_queue_full"] += len(batch)

    def _consume(self) -> None:
        last_loss_check = time.monotonic()
        while not self._stop.is_set() or not self._q.empty():
            try:
                _name, batch = self._q.get(timeout=0.2)
            except queue.Empty:
                batch = []
            for raw in batch:
                try:
                    self._one(raw)
                except Exception as e:  # one bad event never stops the sensor: counted, reported
                    self.consume_errors.report(f"{type(e).__name__}: {e}")
            now = time.monotonic()
            if now - last_loss_check >= 1.0:
                last_loss_check = now
                self.check_loss()

    def _one(self, raw: dict[str, Any]) -> None:
        data = self._enrich(raw)
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
        """A container seen for the first time: watch its root filesystem for file events. One not
        described yet (its root unknown) is tried again on its next events."""
        fan = self.backends.get("fanotify")
        info = self.enricher.resolver.cached(full_id) if self.enricher is not None else None
        if fan is not None and info is not None and not info.complete:
            return
        self._containers[full_id] = None
        while len(self._containers) > MAX_CONTAINERS:
            old, _ = self._containers.popitem(last=False)
            self._roots.pop(old, None)
        if fan is None:
            return
        root = getattr(info, "rootfs", None)
        if not root:
            return
        self._roots[full_id] = [root.rstrip("/") + "/"]
        # an overlay root has its own superblock: mark it whole, which covers the container's own
        # mount of it; its create/delete/rename events are seen in the writable upper layer (overlay
        # cannot report them). A plain directory is marked through the container's mount.
        upper = getattr(info, "upperdir", None)
        overlay = upper or getattr(info, "root_fstype", None) == "overlay"
        pid = getattr(info, "init_pid", None)
        if overlay:
            watch = _watch(root, "filesystem", upper)
            if upper:
                self._roots[full_id].append(upper.rstrip("/") + "/")
        elif pid:
            watch = _watch(f"/proc/{pid}/root", "mount")
        else:
            return
        try:
            fan.add_watch(watch)  # type: ignore[attr-defined]
        except Exception as e:
            fan.stats.error(f"cannot watch the root filesystem of container {full_id[:12]} ({root}): {e}")

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
        return self._q.qsize()

    def status(self) -> dict[str, Any]:
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
        ebpf = self.backends.get("ebpf")
        out["kernel_prefilter"] = {"drop_failed": sorted(getattr(ebpf, "dropping_failed", ()))}
        return out

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(3.0)
        for b in self.backends.values():
            try:
                b.close()
            except Exception:
                pass
        self.check_loss()


def _hurry() -> None:
    """The calling thread reads /proc for each exec before the process is gone (the proc connector
    names only the pid): let the kernel run it before busy threads, and let it take the GIL from
    the consumer within a millisecond (Python's default is 5 ms; `cat` lives about one)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PROCESS_READER_NICE)
    except OSError:
        pass
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))


def loss_alert(hostname: str, backend: str, cause: str, new: int, total: int) -> Alert:
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
    cfg: StockadeConfig, pipeline: Any, p: SensorPlan, needed: set[str] | None
) -> frozenset[str]:
    """With sensor.kernel_prefilter and the eBPF backend: the syscalls it follows whose failed calls no
    active rule of the pipeline's engine can match (decided once, at start, as the event types are)."""
    engine = getattr(pipeline, "engine", None)
    if not cfg.sensor.kernel_prefilter or engine is None or "ebpf" not in p.backends:
        return frozenset()
    types = p.capabilities["ebpf"].evttypes
    if needed is not None:
        types = types & (needed | PROCESS_EVTTYPES)
    return failed_droppable(engine.conditions("syscall"), types)


def _enricher() -> Any:
    """The process-table and container enricher, or None if it cannot be loaded."""
    try:
        mod = importlib.import_module("stockade.sensor.enrich")
        enricher = mod.Enricher()
        enricher.start()
        return enricher
    except (ImportError, AttributeError, OSError):
        return None


def _strip(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def _watch(path: str, scope: str, names: str | None = None) -> Any:
    from stockade.sensor.fanotify import Watch

    return Watch(path, scope, names)  # type: ignore[arg-type]
