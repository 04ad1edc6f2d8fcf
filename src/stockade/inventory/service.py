"""The inventory service of a node: what runs here, kept current in the store.

Started by the node's guard (:class:`stockade.runtime.node.NodeGuard`, in `stockade up` and
`stockade agent`) with ``inventory.enabled``. Its own thread (``stockade-inventory``) looks at the
running containers every ``inventory.watch_s`` (the cgroup2 hierarchy: cheap) and refreshes at once
when one started or stopped, and fully every ``inventory.interval_s``:

* the host's facts (:mod:`stockade.inventory.host`);
* each running container (:func:`stockade.inventory.containers.container_record`), its addresses
  and listening ports; a container no longer running is marked ``gone`` with the time it was
  found gone;
* the images (:mod:`stockade.inventory.images`) with the containers using each;
* the listening sockets of the node and of every container (:mod:`stockade.inventory.ports`);
* the network graph's changed edges (:mod:`stockade.inventory.graph`), fed by :meth:`observe`
  from the pipeline, written every tick.

Only what changed is written. Retention (``inventory.retention_s``) deletes containers gone, images
not seen and edges quiet for longer. A failure is counted and reported in :meth:`status`; the
service goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from stockade.config import StockadeConfig
from stockade.inventory.containers import container_record
from stockade.inventory.graph import FlowGraph
from stockade.inventory.host import host_facts
from stockade.inventory.images import ImageReader
from stockade.inventory.ports import Namespace, PortScanner
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.sensor.containers.addresses import container_addresses
from stockade.sensor.containers.discover import RunningContainer, running_containers
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.procfs import start_time_ns
from stockade.storage.inventory import InventoryStore

__all__ = ["InventoryService"]

log = logging.getLogger("stockade.inventory")

#: how often retention runs (at most)
_PRUNE_EVERY_S = 600.0


class InventoryService:
    """The node's live inventory (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        store: InventoryStore,
        *,
        resolver: ContainerResolver | None = None,
        discover: Callable[[], list[RunningContainer]] = running_containers,
        images: ImageReader | None = None,
        addresses_of: Callable[[int], frozenset[str]] = container_addresses,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg
        self.inv = cfg.inventory
        self.hostname = cfg.hostname
        self.store = store
        self.resolver = resolver or ContainerResolver()
        self._discover = discover
        self.images = images if images is not None else (ImageReader() if self.inv.images else None)
        self._addresses_of = addresses_of
        self.clock = clock
        self.ports = PortScanner()
        #: full id -> the record written last
        self.containers: dict[str, dict[str, Any]] = {}
        self.graph = FlowGraph(max_edges=self.inv.max_edges, workload_of=self._workload_of)
        self.errors = ErrorLog("inventory", logger="stockade.inventory")
        self.counts: dict[str, int] = {"refreshes": 0, "full_refreshes": 0, "errors": 0}
        #: CPU seconds (thread time) of the latest refresh, and of the latest full one
        self.last_refresh_cpu_s = 0.0
        self.last_full_cpu_s = 0.0
        self._running: frozenset[str] = frozenset()
        self._undescribed = False
        self._last_full = 0.0
        self._last_prune = 0.0
        self._images_sig: tuple[Any, ...] = ()
        self._ports_sig: tuple[Any, ...] = ()
        self._reported: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the event path ----------------------------------------------------------------------------
    def observe(self, data: dict[str, Any]) -> list[Alert]:
        """One syscall event (the pipeline's observer): a connect or accept feeds the graph."""
        self.graph.observe(data)
        return []

    def _workload_of(self, data: Mapping[str, Any]) -> str | None:
        cid = data.get("container.full_id")
        rec = self.containers.get(cid) if isinstance(cid, str) else None
        return rec.get("workload") if rec is not None else None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the graph's edges, refresh once, and start the thread."""
        try:
            self.graph.load(self.store.edges(hostname=self.hostname))
            self.containers = self.store.running(self.hostname)
        except Exception as e:  # a store problem: reported, the inventory starts empty
            self._fail("load", e)
        self._tick(force=True)
        self._thread = threading.Thread(target=self._run, name="stockade-inventory", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write the graph's last changes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._flush_graph()

    def _run(self) -> None:
        while not self._stop.wait(self.inv.watch_s):
            self._tick()

    def _tick(self, *, force: bool = False) -> None:
        with self._lock:
            try:
                found = self._discover()
                ids = frozenset(c.full_id for c in found)
                full = force or time.monotonic() - self._last_full >= self.inv.interval_s
                if full or ids != self._running or self._undescribed:
                    self.refresh(found, full=full)
            except Exception as e:
                self._fail("refresh", e)
            self._flush_graph()
            if time.monotonic() - self._last_prune >= _PRUNE_EVERY_S:
                self._prune()

    def refresh_now(self) -> None:
        """A full refresh now (tests, the API's callers that cannot wait)."""
        with self._lock:
            self.refresh(self._discover(), full=True)
            self._flush_graph()

    # -- the refresh -------------------------------------------------------------------------------
    def refresh(self, found: list[RunningContainer], *, full: bool) -> None:
        """Containers (started, stopped, described), ports, and when `full` the host and images."""
        cpu0 = time.thread_time()
        now = self.clock()
        running: dict[str, dict[str, Any]] = {}
        self._undescribed = False
        for c in found:
            info = self.resolver.by_id(c.full_id, c.runtime)
            old = self.containers.get(c.full_id)
            if old is not None and old.get("described") and not full and old.get("pid") == c.pid:
                running[c.full_id] = old
                continue
            rec = container_record(c, info, self._addresses_of(c.pid), start_time_ns(c.pid))
            self._undescribed |= not info.complete
            running[c.full_id] = rec
        gone = [
            dict(r, state="gone", stopped_ns=now) for cid, r in self.containers.items() if cid not in running
        ]
        self._scan_ports(found, running, now)
        changed = [r for cid, r in running.items() if self.containers.get(cid) != r]
        self.store.put_containers(self.hostname, changed + gone, now)
        self.containers = running
        self._running = frozenset(running)
        self.graph.set_peers(
            {
                a: (str(r["workload"]), int(r["started_ns"] or 0))
                for r in running.values()
                if r["workload"]
                for a in r["addresses"]
            }
        )
        if full:
            self._last_full = time.monotonic()
            self._refresh_images(now)
            facts = host_facts(self.hostname)
            facts["containers_running"] = len(running)
            facts["images"] = len(self.images.images()) if self.images is not None else None
            self.store.put_host(self.hostname, facts, now)
            self.counts["full_refreshes"] += 1
        self.counts["refreshes"] += 1
        spent = time.thread_time() - cpu0
        self.last_refresh_cpu_s = spent
        if full:
            self.last_full_cpu_s = spent

    def _scan_ports(
        self, found: list[RunningContainer], running: dict[str, dict[str, Any]], now: int
    ) -> None:
        spaces = [Namespace(0)]
        by_pid: dict[int, Namespace] = {}
        for c in found:
            rec = running[c.full_id]
            ns = Namespace(c.pid, c.pids, c.full_id, rec.get("workload"))
            spaces.append(ns)
            by_pid.update((p, ns) for p in c.pids)
        ports = self.ports.scan(spaces, by_pid)
        per: dict[str, list[dict[str, Any]]] = {}
        for p in ports:
            cid = p.get("container_id")
            if isinstance(cid, str):
                per.setdefault(cid, []).append({k: p[k] for k in ("protocol", "address", "port", "process")})
        for cid, rec in running.items():
            mine = sorted(per.get(cid, []), key=lambda p: (str(p["protocol"]), int(p["port"])))
            if rec.get("ports") != mine:
                running[cid] = dict(rec, ports=mine)
        sig = tuple(
            sorted(
                (p["protocol"], p["address"], p["port"], p["pid"] or 0, p["workload"] or "") for p in ports
            )
        )
        if sig != self._ports_sig:
            self.store.replace_ports(self.hostname, ports, now)
            self._ports_sig = sig

    def _refresh_images(self, now: int) -> None:
        if self.images is None:
            return
        users: dict[str, list[str]] = {}
        for cid, r in self.containers.items():
            iid = r.get("image_id")
            if isinstance(iid, str):
                users.setdefault(iid, []).append(cid)
        records = [dict(i, containers=sorted(users.get(i["id"], []))) for i in self.images.images()]
        sig = tuple((r["id"], tuple(r["containers"])) for r in records)
        if sig != self._images_sig:
            self.store.replace_images(self.hostname, records, now)
            self._images_sig = sig
        if self.images.problems is not self._reported:
            # said once per read of the store, not at every refresh
            self._reported = self.images.problems
            for p in self._reported:
                self.errors.report(p)

    def _flush_graph(self) -> None:
        try:
            rows, deleted = self.graph.drain()
            if deleted:
                self.store.delete_edges(self.hostname, deleted)
            self.store.put_edges(self.hostname, rows)
        except Exception as e:
            self._fail("graph", e)

    def _prune(self) -> None:
        self._last_prune = time.monotonic()
        before = self.clock() - int(self.inv.retention_s * 1e9)
        try:
            self.graph.prune(before)
            self.store.prune(before)
        except Exception as e:
            self._fail("retention", e)

    def _fail(self, what: str, e: Exception) -> None:
        self.counts["errors"] += 1
        self.errors.report(f"inventory {what}: {type(e).__name__}: {e}")

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of the inventory."""
        return {
            "containers_running": len(self.containers),
            "edges": len(self.graph.edges),
            "graph": dict(self.graph.stats),
            **self.counts,
            "ports_unattributed": self.ports.unattributed,
            "ports_problem": self.ports.problem,
            "last_refresh_cpu_ms": round(self.last_refresh_cpu_s * 1000, 2),
            "last_full_refresh_cpu_ms": round(self.last_full_cpu_s * 1000, 2),
            "errors_recent": self.errors.errors,
        }
