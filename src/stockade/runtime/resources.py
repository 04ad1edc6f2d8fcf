"""Resource behaviour at runtime: every ``resources.interval_s``, each running container is sampled
(CPU, memory, pids, open files, network: :mod:`stockade.resources.sampler`), attributed to its
workload, stored (kept ``resources.retention_s``), checked against its workload's learned baseline
and learned into it while it learns (:mod:`stockade.resources.watch`); a sustained deviation is an
alert, passed to the pipeline like the zero-trust alerts (mutes, aggregation, sinks, store). A
baseline that finished learning is stored, and loaded again after a restart.

The containers are found as zero trust finds them (the cgroup2 hierarchy,
:func:`~stockade.sensor.containers.discover.running_containers`) and described by their runtime
(:class:`~stockade.sensor.containers.resolver.ContainerResolver`, cached by id). A round runs in
the monitor's own thread (``stockade-resources``); :meth:`ResourceMonitor.tick` is one round, which
tests call directly with a :class:`~stockade.model.clock.FakeClock`. A round that fails is counted
and logged, and the next one runs. On start the stored baselines are loaded, and those still
learning learn the stored samples again, so a restart does not start learning from nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from stockade.behavior.workload import workload_of_event
from stockade.config import StockadeConfig
from stockade.errors import NotFoundError, StockadeError
from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.model.errorlog import ErrorLog
from stockade.resources.alerts import RULES
from stockade.resources.sampler import Sampler
from stockade.resources.watch import Owner, ResourceWatch
from stockade.sensor.containers.discover import RunningContainer, running_containers
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.storage.resources import ResourceSample, ResourceStore

__all__ = ["RULE_NAMES", "NoResources", "ResourceMonitor"]

log = logging.getLogger("stockade.resources")

#: the rules resource alerts are raised under (mutable like any loaded rule)
RULE_NAMES = frozenset(r.name for r in RULES.values())
#: how often old samples are deleted, at least
_PRUNE_EVERY_S = 60.0

Emit = Callable[[list[Alert]], object]


class NoResources(StockadeError):
    """A resources request to an instance that samples none (no sensor here, or disabled)."""

    http_status = 409
    problem_type = "no-resources"
    title = "Resources are not sampled here"


class ResourceMonitor:
    """Samples, stores, learns and alerts on the node's containers (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        store: ResourceStore | None,
        emit: Emit,
        *,
        clock: Clock = SYSTEM,
        resolver: ContainerResolver | None = None,
        discover: Callable[[], list[RunningContainer]] = running_containers,
        sampler: Sampler | None = None,
    ) -> None:
        self.rc = cfg.resources
        self.store = store
        self.emit = emit
        self.clock = clock
        self.resolver = resolver or ContainerResolver()
        self._discover = discover
        self.sampler = sampler or Sampler(clock=clock)
        self.watch = ResourceWatch(self.rc, cfg.hostname)
        self._owners: dict[str, Owner] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = float("-inf")
        self.stats: Counter[str] = Counter()
        self.errors = ErrorLog("resources", logger="stockade.resources", clock=clock)
        #: CPU seconds the last round took (sampling, storing, checking)
        self.last_round_cpu_s = 0.0

    def _now_ns(self) -> int:
        return int(self.clock.time() * 1e9)

    # -- start and stop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Learn the baselines again from the stored samples, then sample in the monitor's thread."""
        self.seed()
        self._thread = threading.Thread(target=self._run, name="stockade-resources", daemon=True)
        self._thread.start()

    def seed(self) -> int:
        """Load the stored baselines, and learn the samples stored within the retention into those
        still learning; how many samples were learned."""
        if self.store is None:
            return 0
        try:
            with self._lock:
                self.watch.load(self.store.load_baselines())
                since = self._now_ns() - int(self.rc.retention_s * 1e9)
                n = self.watch.seed(self.store.recent(since))
        except StockadeError as e:
            self.errors.report(f"cannot learn the baselines from the store: {e}")
            return 0
        self._save_frozen()
        self.stats["seeded_samples"] += n
        return n

    def close(self) -> None:
        """Stop sampling (the round under way finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            try:
                self.tick()
            except Exception as e:  # the next round runs: counted, kept for status, logged
                self.stats["failed_rounds"] += 1
                self.errors.report(f"{type(e).__name__}: {e}")
            self._stop.wait(max(0.0, self.rc.interval_s - (self.clock.monotonic() - started)))

    # -- one round ---------------------------------------------------------------------------------
    def tick(self) -> list[Alert]:
        """Sample every running container, store, check and learn; the alerts raised."""
        cpu0 = time.thread_time()
        containers = self._discover()
        owners = {c.full_id: self._owner(c) for c in containers}
        samples = [
            s.with_owner(owners[s.container_id].workload, owners[s.container_id].name)
            for s in self.sampler.sample(containers)
        ]
        self._keep(samples)
        with self._lock:
            alerts = self.watch.observe(samples, owners)
        self._save_frozen()
        self.stats["rounds"] += 1
        self.stats["samples"] += len(samples)
        for a in alerts:
            self._raise(a)
        self._prune()
        self.last_round_cpu_s = time.thread_time() - cpu0
        return alerts

    def _owner(self, c: RunningContainer) -> Owner:
        known = self._owners.get(c.full_id)
        if known is not None:
            return known
        info = self.resolver.by_id(c.full_id, c.runtime)
        if not info.complete:  # not described yet: sampled and stored, no baseline; asked again
            self.stats["undescribed"] += 1
            return Owner(None, info.name)
        fields = info.fields()
        owner = self._owners[c.full_id] = Owner(workload_of_event(fields).id, info.name, fields)
        return owner

    def _keep(self, samples: list[ResourceSample]) -> None:
        running = {s.container_id for s in samples}
        for cid in [cid for cid in self._owners if cid not in running]:
            del self._owners[cid]
        if self.store is None or not samples:
            return
        try:
            self.store.add_samples(samples)
        except StockadeError as e:
            self.stats["store_errors"] += 1
            self.errors.report(str(e))

    def _save_frozen(self) -> None:
        """Store the baselines that finished learning (kept for the next round if that fails)."""
        with self._lock:
            frozen, self.watch.frozen = self.watch.frozen, []
        if self.store is None or not frozen:
            return
        try:
            self.store.save_baselines([b.record() for b in frozen])
        except StockadeError as e:
            self.stats["store_errors"] += 1
            self.errors.report(str(e))
            with self._lock:
                self.watch.frozen = frozen + self.watch.frozen
            return
        for b in frozen:
            log.info("workload %s: resource baseline learned from %d samples", b.workload, b.samples)

    def _raise(self, alert: Alert) -> None:
        self.stats["alerts"] += 1
        passed = self.emit([alert])
        cid = alert.output_fields.get("container.full_id")
        if isinstance(passed, int) and passed == 0:
            self.stats["muted"] += 1
        elif isinstance(cid, str):
            with self._lock:
                self.watch.alerts[cid] += 1
        log.info("%s", alert.output)

    def _prune(self) -> None:
        now = self.clock.monotonic()
        if self.store is None or now - self._last_prune < max(_PRUNE_EVERY_S, self.rc.interval_s):
            return
        self._last_prune = now
        try:
            self.stats["pruned"] += self.store.prune(self._now_ns() - int(self.rc.retention_s * 1e9))
        except StockadeError as e:
            self.stats["store_errors"] += 1
            self.errors.report(str(e))

    # -- views (the API's) -------------------------------------------------------------------------
    def latest(self) -> list[dict[str, Any]]:
        """The latest sample of every running container with its risk columns (ResourceWatch.rows)."""
        with self._lock:
            return self.watch.rows()

    def history(
        self, container: str, *, since_ns: int | None, until_ns: int | None, limit: int
    ) -> dict[str, Any]:
        """A container's stored samples in a time range, oldest first; `container` is its id, an
        id prefix or its name (NotFoundError when nothing is stored of it)."""
        if self.store is None:
            raise StockadeError("resource samples are not stored on this instance")
        cid = self.store.container_id(container)
        items = self.store.history(cid, since_ns=since_ns, until_ns=until_ns, limit=limit)
        return {"container_id": cid, "items": [s.to_dict() for s in items], "total": len(items)}

    def relearn(self, workload: str) -> dict[str, Any]:
        """Forget a workload's baseline: it learns again from its next sample (NotFoundError when
        it has none)."""
        with self._lock:
            had = self.watch.forget(workload)
            self.watch.frozen = [b for b in self.watch.frozen if b.workload != workload]
        stored = self.store.delete_baseline(workload) if self.store is not None else False
        if not (had or stored):
            raise NotFoundError(
                f"no resource baseline of a workload {workload!r} (`stockade top` shows them)"
            )
        log.info("workload %s: resource baseline forgotten, learning again", workload)
        return {"workload": workload, "state": "learning"}

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of resource monitoring."""
        with self._lock:
            ready = sum(1 for b in self.watch.baselines.values() if b.frozen)
            return {
                "interval_s": self.rc.interval_s,
                "containers": len(self.watch.latest),
                "workloads": len(self.watch.baselines),
                "baselines_ready": ready,
                "last_round_cpu_ms": round(self.last_round_cpu_s * 1000, 3),
                "counters": dict(self.stats),
                "errors": self.errors.errors,
            }
