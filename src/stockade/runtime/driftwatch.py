"""Drift at runtime: every ``drift.interval_s`` each running container's files are compared with
its image (:func:`stockade.inventory.drift.container_drift`: its overlay's upper layer), and a
change in a watched path (``drift.watch``) raises an alert of the builtin rule
:data:`~stockade.inventory.drift.DRIFT_RULE`, passed to the pipeline like the other builtin alerts.
The same check runs on demand (``GET /api/v1/containers/{id}/drift``, `stockade drift`).

Each (container, path, kind of change) alerts once while the container runs: a file changed, then
deleted, alerts twice; a container that is gone is forgotten. A round runs in the monitor's own
thread (``stockade-drift``); :meth:`DriftMonitor.tick` is one round.
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
from stockade.errors import StockadeError
from stockade.inventory.drift import container_drift, drift_alert
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.runtime.rounds import Rounds
from stockade.sensor.containers.discover import RunningContainer, running_containers
from stockade.sensor.containers.lookup import FoundContainer, find_container

__all__ = ["DriftMonitor", "NoDrift"]

log = logging.getLogger("stockade.drift")

Emit = Callable[[list[Alert]], object]


class NoDrift(StockadeError):
    """A drift request to an instance that is not on the containers' node (no sensor here)."""

    http_status = 409
    problem_type = "no-drift"
    title = "Container drift is not checked here"


class DriftMonitor:
    """Checks the running containers' drift against the watch list (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        emit: Emit,
        *,
        discover: Callable[[], list[RunningContainer]] = running_containers,
        find: Callable[[str], FoundContainer] = find_container,
    ) -> None:
        self.dc = cfg.drift
        self.hostname = cfg.hostname
        self.emit = emit
        self._discover = discover
        self._find = find
        self._found: dict[str, FoundContainer] = {}
        self._alerted: dict[str, set[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.errors = ErrorLog("drift", logger="stockade.drift")
        self._rounds = Rounds(
            "stockade-drift", self.tick, lambda: self.dc.interval_s, self.stats, self.errors
        )

    def start(self) -> None:
        """Check in the monitor's thread, now and every ``drift.interval_s``."""
        self._rounds.start()

    def close(self) -> None:
        """Stop (the round under way finishes)."""
        self._rounds.close(timeout_s=30)

    def tick(self) -> list[Alert]:
        """Check every running container; the alerts raised."""
        running = {c.full_id for c in self._discover()}
        with self._lock:
            for cid in [cid for cid in self._found if cid not in running]:
                self._found.pop(cid, None)
                self._alerted.pop(cid, None)
        alerts: list[Alert] = []
        for cid in sorted(running):
            found = self._found.get(cid)
            if found is None:
                try:
                    found = self._found[cid] = self._find(cid)
                except StockadeError as e:  # gone meanwhile, or not described: next round
                    self.stats["not_found"] += 1
                    log.debug("drift: container %s: %s", cid[:12], e)
                    continue
            alerts += self._check(found)[1]
        self.stats["rounds"] += 1
        return alerts

    def _check(self, found: FoundContainer) -> tuple[dict[str, Any], list[Alert]]:
        doc = container_drift(found, self.dc.watch)
        self.stats["checks"] += 1
        if not doc["known"]:
            self.stats["unknown"] += 1
            return doc, []
        fields = found.info.fields()
        workload = workload_of_event(fields).id
        alerts: list[Alert] = []
        now = time.time_ns()
        with self._lock:
            done = self._alerted.setdefault(found.id, set())
            fresh = [c for c in doc["watched"] if (c["path"], c["change"]) not in done]
            done.update((c["path"], c["change"]) for c in fresh)
        for c in fresh:
            alerts.append(
                drift_alert(c, doc["container"], self.hostname, now, fields=fields, workload=workload)
            )
        if alerts:
            passed = self.emit(alerts)
            self.stats["alerts"] += len(alerts)
            if isinstance(passed, int):
                self.stats["muted"] += len(alerts) - passed
            for a in alerts:
                log.info("%s", a.output)
        return doc, alerts

    def drift(self, ref: str) -> dict[str, Any]:
        """The drift of the container `ref` names (its id, a unique prefix or its name), checked
        now: a change in a watched path not alerted yet alerts (NotFoundError: no such container)."""
        found = self._find(ref)
        with self._lock:
            self._found[found.id] = found
        doc, alerts = self._check(found)
        doc["alerts_raised"] = len(alerts)
        return doc

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of drift checks."""
        return {
            "interval_s": self.dc.interval_s,
            "containers": len(self._found),
            "watch": list(self.dc.watch),
            "counters": dict(self.stats),
            "errors": self.errors.errors,
        }
