"""Incidents at runtime: every alert the pipeline delivers is grouped (:mod:`stockade.incidents.
correlate`), stored with its timeline, and given to the playbooks.

:class:`IncidentService` is one of the pipeline's sinks: ``emit`` only queues the alert (bounded;
what does not fit is counted as dropped and reported in ``status``), and the service's own thread
(``stockade-incidents``) correlates, stores and hands matching alerts to the response engine
(:mod:`stockade.runtime.response`), so a slow database or a long evidence capture never holds the
pipeline. A responder's changes (status, owner, notes) and the response engine's records (actions,
evidence) come in through :meth:`update` and :meth:`record`, under the same lock as correlation,
so an incident is never written by two threads at once. After a restart the incidents still
active within the window are loaded back, so alerts keep joining them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.config import IncidentsConfig
from stockade.errors import UsageError
from stockade.incidents.correlate import Correlated, Correlator
from stockade.incidents.score import score, severity_of
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.model.incident import STATUSES, Incident, TimelineEntry
from stockade.sinks.interface import SinkStats
from stockade.storage.incidents import IncidentStore

__all__ = ["IncidentService", "IncidentStats", "OnCorrelated"]

#: alerts waiting to be grouped at most (more are dropped, counted)
_QUEUE_MAX = 50_000
#: alerts grouped per store transaction at most
_BATCH = 500
#: how often incidents quiet for longer than the window are forgotten (they stay in the store)
_EXPIRE_EVERY_NS = 60 * 1_000_000_000

#: what the response engine is given for each grouped alert
OnCorrelated = Callable[[Alert, Correlated], None]


@dataclass(slots=True)
class IncidentStats:
    """What the incident service counted."""

    alerts: int = 0
    opened: int = 0
    dropped: int = 0
    errors: int = 0
    errlog: ErrorLog = field(default_factory=lambda: ErrorLog("incidents", logger="stockade.incidents"))


class IncidentService:
    """Groups delivered alerts into incidents and keeps them (module docstring)."""

    name = "incidents"

    def __init__(
        self,
        cfg: IncidentsConfig,
        store: IncidentStore,
        *,
        clock: Callable[[], int] = time.time_ns,
        audit: Callable[[str, str, dict[str, Any], str], object] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        #: audit(kind, subject, data, actor): the audit log's append, when there is one
        self.audit = audit
        self.correlator = Correlator(
            window_s=cfg.window_s,
            open_priority=cfg.open_priority,
            notify_within_s=cfg.notify_within_s or None,
        )
        #: called (in the service's thread) for every grouped alert: the response engine
        self.on_correlated: OnCorrelated | None = None
        self.stats = SinkStats()
        self.counts = IncidentStats()
        self._queue: deque[Alert] = deque()
        self._cond = threading.Condition()
        self._lock = threading.RLock()
        self._stop = False
        self._busy = False
        self._last_expiry = 0
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the incidents still active and start grouping."""
        since = self.clock() - int(self.cfg.window_s * 1e9)
        with self._lock:
            self.correlator.load(self.store.active(since))
        self._thread = threading.Thread(target=self._run, name="stockade-incidents", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Group what is queued (bounded in time) and stop."""
        self.drain(timeout_s=10.0)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    # -- the sink side ----------------------------------------------------------------------------
    def emit(self, alert: Alert) -> None:
        """Queue one alert for grouping (never blocks; counted as dropped when the queue is full)."""
        with self._cond:
            if len(self._queue) >= _QUEUE_MAX:
                self.counts.dropped += 1
                self.stats.dropped += 1
                return
            self._queue.append(alert)
            self._cond.notify()

    def flush(self) -> None:
        """Nothing buffered beyond the queue the thread works on."""

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued alert is grouped (tests, shutdown); False on timeout."""
        end = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                if self._thread is None or not self._thread.is_alive():
                    self._process(self._take())
                    continue
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _take(self) -> list[Alert]:
        batch: list[Alert] = []
        while self._queue and len(batch) < _BATCH:
            batch.append(self._queue.popleft())
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait(1.0)
                if self._stop and not self._queue:
                    return
                batch = self._take()
                self._busy = True
            try:
                self._process(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, batch: list[Alert]) -> None:
        if not batch:
            return
        done: list[tuple[Alert, Correlated]] = []
        with self._lock:
            try:
                for alert in batch:
                    c = self.correlator.observe(alert)
                    self.counts.alerts += 1
                    if c is not None:
                        done.append((alert, c))
                        self.counts.opened += c.created
                now = self.clock()
                if now - self._last_expiry >= _EXPIRE_EVERY_NS:
                    # incidents quiet for longer than the window take no more alerts: out of memory
                    self._last_expiry = now
                    self.correlator.expire(now)
                touched = {c.incident.id: c.incident for _, c in done}
                self.store.save(
                    list(touched.values()),
                    [(c.incident.id, e) for _, c in done for e in c.entries],
                    [(c.incident.id, a.id, a.time_ns) for a, c in done],
                )
                self.stats.sent += len(batch)
            except Exception as e:  # counted and reported; the next batch goes on
                self.counts.errors += len(batch)
                self.stats.failed += len(batch)
                self.counts.errlog.report(f"cannot group {len(batch)} alerts: {type(e).__name__}: {e}")
                return
        for alert, c in done:
            if c.created and self.audit is not None:
                self._audit(
                    "incident", c.incident.id, {"opened_by": alert.id, "rule": alert.rule}, "stockade"
                )
            if self.on_correlated is not None:
                try:
                    self.on_correlated(alert, c)
                except Exception as e:  # a playbook failure is recorded, grouping goes on
                    self.counts.errlog.report(f"response to {alert.rule}: {type(e).__name__}: {e}")

    def _audit(self, kind: str, subject: str, data: dict[str, Any], actor: str) -> None:
        if self.audit is None:
            return
        try:
            self.audit(kind, subject, data, actor)
        except Exception as e:  # the audit log reports its own failures; never stop here
            self.counts.errlog.report(f"audit: {type(e).__name__}: {e}")

    # -- the responder side -----------------------------------------------------------------------
    def incident_for_container(self, container_id: str) -> Incident | None:
        """The active incident holding a container (the most recent), if any."""
        with self._lock:
            found = [i for i in self.correlator.active.values() if _holds(i, container_id)]
        return max(found, key=lambda i: i.last_ns) if found else None

    def _current(self, ref: str) -> Incident:
        incident_id = self.store.resolve_id(ref)
        inc = self.correlator.active.get(incident_id)
        return inc if inc is not None else self.store.get(incident_id, with_alerts=False)

    def record(
        self, ref: str, entries: Sequence[TimelineEntry], *, change: Callable[[Incident], None] | None = None
    ) -> Incident:
        """Add timeline entries to an incident, applying `change` to it first (under the lock)."""
        with self._lock:
            inc = self._current(ref)
            if change is not None:
                change(inc)
            inc.updated_ns = max(inc.updated_ns, self.clock())
            self.store.save([inc], [(inc.id, e) for e in entries])
            self.correlator.replace(inc)
            return inc

    def update(
        self,
        ref: str,
        *,
        actor: str,
        status: str | None = None,
        owner: str | None = None,
        note: str | None = None,
    ) -> Incident:
        """A responder's change: status, owner, a note; each recorded on the timeline and audited."""
        if status is not None and status not in STATUSES:
            raise UsageError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        if status is None and owner is None and not note:
            raise UsageError("nothing to change: give a status, an owner or a note")
        now = self.clock()
        entries: list[TimelineEntry] = []
        changes: dict[str, Any] = {}

        def change(inc: Incident) -> None:
            if status is not None and status != inc.status:
                entries.append(
                    TimelineEntry(
                        now,
                        "state",
                        f"status {inc.status} -> {status}",
                        actor,
                        {"from": inc.status, "to": status},
                    )
                )
                changes["status"] = [inc.status, status]
                inc.status = status
            if owner is not None and owner != (inc.owner or ""):
                entries.append(
                    TimelineEntry(
                        now,
                        "state",
                        f"owner {inc.owner or '-'} -> {owner or '-'}",
                        actor,
                        {"from": inc.owner, "to": owner},
                    )
                )
                changes["owner"] = [inc.owner, owner or None]
                inc.owner = owner or None
            if note:
                inc.notes.append({"time_ns": now, "author": actor, "text": note})
                entries.append(TimelineEntry(now, "note", note[:2000], actor))
                changes["note"] = note[:2000]
            inc.score = score(inc)
            inc.severity = severity_of(inc.score)

        inc = self.record(ref, entries, change=change)
        if changes:
            self._audit("incident", inc.id, changes, actor)
        return inc

    def status(self) -> dict[str, Any]:
        """Counters for `stockade status`."""
        with self._cond:
            queued = len(self._queue)
        return {
            "active": len(self.correlator.active),
            "alerts": self.counts.alerts,
            "opened": self.counts.opened,
            "queued": queued,
            "dropped": self.counts.dropped,
            "errors": self.counts.errors,
            "last_errors": self.counts.errlog.errors,
        }


def _holds(incident: Incident, container_id: str) -> bool:
    """Whether the incident holds the container: alerts name containers by the short id (Falco's
    ``container.id``, 12 hex digits), the runtime by the full one."""
    return any(container_id.startswith(c) or c.startswith(container_id) for c in incident.containers if c)
