"""Alerts grouped into incidents, per workload and attack chain.

An alert joins the active incident (not resolved) that, within ``window_ns`` of its last alert:

1. has the same key: the alert's workload (``workload:ID``; replicas of one workload are one
   incident: an attack spreading across them is one attack), else its container
   (``container:ID``), else its host (``host:NAME``);
2. or holds the alert's container (an incident keyed by workload gathers its containers);
3. or, for a host alert (no workload, no container), holds a process of its process tree
   (``proc.pid``, ``proc.ppid``, ``proc.apid[N]`` of the alert's fields, on the same host): a host shell that ``nsenter``s a container, or a
   container escape, joins the chain it started from.

Otherwise a new incident opens, unless the alert is below ``open_priority`` (it then stays a plain
alert: a Debug alert alone is no incident). The :class:`Correlator` keeps the active incidents in
memory (the store is the record; :meth:`Correlator.load` takes them back after a restart); it is
not thread-safe: one thread feeds it (:mod:`stockade.runtime.incidents`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from stockade.incidents.score import score, severity_of, worse_priority
from stockade.model.alert import Alert, priority_rank
from stockade.model.attack import tactics_of, techniques_of
from stockade.model.incident import Incident, TimelineEntry, new_incident_id

__all__ = ["Correlated", "Correlator", "alert_pids", "container_of", "key_of"]

K = TypeVar("K")

#: container.id values that mean "not in a container"
_NO_CONTAINER = frozenset({"", "host", "<NA>", "None"})
#: most pids an incident remembers for process-tree linking
_MAX_PIDS = 256
#: most alert ids an incident keeps in memory (the newest)
_MAX_ALERT_IDS = 1000
#: most containers an incident lists
_MAX_CONTAINERS = 256


def container_of(alert: Alert) -> str | None:
    """The alert's container id, None for the host."""
    cid = alert.output_fields.get("container.id")
    if cid is None:
        return None
    cid = str(cid)
    return None if cid in _NO_CONTAINER else cid


def key_of(alert: Alert) -> str:
    """What the alert is grouped by first (module docstring)."""
    if alert.workload:
        return f"workload:{alert.workload}"
    cid = container_of(alert)
    if cid:
        return f"container:{cid}"
    return f"host:{alert.hostname}"


def _int(v: Any) -> int | None:
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if n > 1 else None  # 0 and 1 (init) link everything: never a tree


def alert_pids(alert: Alert) -> list[int]:
    """The host pids of the alert's process tree that its fields name (pid, parent, ancestors)."""
    out: list[int] = []
    for name, value in alert.output_fields.items():
        if name in ("proc.pid", "proc.ppid") or name.startswith("proc.apid"):
            n = _int(value)
            if n is not None and n not in out:
                out.append(n)
    return out


@dataclass(frozen=True, slots=True)
class Correlated:
    """What one alert did: the incident it joined (or opened), and the timeline entries to add."""

    incident: Incident
    created: bool
    entries: tuple[TimelineEntry, ...]
    #: its score or status-relevant facts changed (new tactic, new container, new priority)
    escalated: bool


class Correlator:
    """Groups alerts into incidents (module docstring)."""

    def __init__(
        self,
        *,
        window_s: float = 1800.0,
        open_priority: str = "Notice",
        notify_within_s: float | None = None,
    ) -> None:
        self.window_ns = int(window_s * 1e9)
        self.open_rank = priority_rank(open_priority)
        self.notify_within_ns = int(notify_within_s * 1e9) if notify_within_s else None
        self.active: dict[str, Incident] = {}
        self._by_key: dict[str, str] = {}
        self._by_container: dict[str, str] = {}
        self._by_pid: dict[tuple[str, int], str] = {}

    # -- state ------------------------------------------------------------------------------------
    def load(self, incidents: Iterable[Incident]) -> None:
        """Take back the active incidents (after a restart)."""
        for inc in incidents:
            if inc.active:
                self._index(inc)

    def _index(self, inc: Incident) -> None:
        self.active[inc.id] = inc
        self._by_key[inc.key] = inc.id
        for c in inc.containers:
            self._by_container[c] = inc.id
        for p in inc.pids:
            self._by_pid[inc.hostname, p] = inc.id

    def forget(self, incident_id: str) -> None:
        """Stop adding alerts to an incident (it was resolved)."""
        inc = self.active.pop(incident_id, None)
        if inc is None:
            return
        _drop(self._by_key, incident_id)
        _drop(self._by_container, incident_id)
        _drop(self._by_pid, incident_id)

    def replace(self, incident: Incident) -> None:
        """An incident changed elsewhere (a responder's update): use this copy."""
        if not incident.active:
            self.forget(incident.id)
        else:
            self._index(incident)

    def expire(self, now_ns: int) -> list[str]:
        """Forget incidents quiet for longer than the window (they stay in the store, active)."""
        old = [i for i, inc in self.active.items() if now_ns - inc.last_ns > self.window_ns]
        for i in old:
            self.forget(i)
        return old

    # -- grouping ---------------------------------------------------------------------------------
    def _recent(self, incident_id: str | None, t: int) -> Incident | None:
        if incident_id is None:
            return None
        inc = self.active.get(incident_id)
        if inc is None or not inc.first_ns - self.window_ns <= t <= inc.last_ns + self.window_ns:
            return None
        return inc

    def _find(self, alert: Alert, key: str, cid: str | None, pids: list[int]) -> Incident | None:
        t = alert.time_ns
        found = self._recent(self._by_key.get(key), t)
        if found is None and cid is not None:
            found = self._recent(self._by_container.get(cid), t)
        if found is None and cid is None and not alert.workload:
            # a host process (an escape, a shell that entered a container) joins by process tree
            for p in pids:
                found = self._recent(self._by_pid.get((alert.hostname, p)), t)
                if found is not None:
                    break
        return found

    def observe(self, alert: Alert) -> Correlated | None:
        """Group one alert; None when it is below ``open_priority`` and joins nothing."""
        key, cid, pids = key_of(alert), container_of(alert), alert_pids(alert)
        inc = self._find(alert, key, cid, pids)
        created = False
        if inc is None:
            if priority_rank(alert.priority) > self.open_rank:
                return None
            inc = self._new(alert, key)
            created = True
        before = (len(inc.tactics), len(inc.containers), inc.priority, inc.severity)
        tactics = tactics_of(alert.tags)
        self._add(inc, alert, cid, pids, tactics)
        self._index_new(inc, cid, pids)
        entries = [_alert_entry(alert, cid, tactics)]
        if created:
            entries.insert(
                0,
                TimelineEntry(
                    alert.time_ns, "state", f"incident opened by {alert.rule}", data={"status": "open"}
                ),
            )
        after = (len(inc.tactics), len(inc.containers), inc.priority, inc.severity)
        return Correlated(inc, created, tuple(entries), escalated=created or after != before)

    def _new(self, alert: Alert, key: str) -> Incident:
        t = alert.time_ns
        what = alert.workload or container_of(alert) or f"host {alert.hostname}"
        return Incident(
            id=new_incident_id(t),
            key=key,
            hostname=alert.hostname,
            created_ns=t,
            first_ns=t,
            last_ns=t,
            updated_ns=t,
            title=f"{alert.rule} in {what}",
            workload=alert.workload,
            priority=alert.priority,
            notify_by_ns=t + self.notify_within_ns if self.notify_within_ns else None,
        )

    def _index_new(self, inc: Incident, cid: str | None, pids: list[int]) -> None:
        """Index what this alert added (the whole incident was indexed when it was loaded)."""
        self.active[inc.id] = inc
        self._by_key[inc.key] = inc.id  # the incident's own key only: a host alert joining a
        # container's incident by process tree must not pull every later host alert in
        if cid is not None:
            self._by_container[cid] = inc.id
        for p in pids:
            self._by_pid[inc.hostname, p] = inc.id

    @staticmethod
    def _add(inc: Incident, alert: Alert, cid: str | None, pids: list[int], tactics: list[str]) -> None:
        t = alert.time_ns
        inc.first_ns = min(inc.first_ns, t)
        inc.last_ns = max(inc.last_ns, t)
        inc.updated_ns = max(inc.updated_ns, t)
        inc.alert_count += max(1, alert.count)
        inc.alert_ids.append(alert.id)
        del inc.alert_ids[:-_MAX_ALERT_IDS]  # the store holds them all
        inc.rules[alert.rule] = inc.rules.get(alert.rule, 0) + max(1, alert.count)
        inc.priority = worse_priority(inc.priority, alert.priority)
        if inc.workload is None and alert.workload:
            inc.workload = alert.workload
        if cid is not None and cid not in inc.containers and len(inc.containers) < _MAX_CONTAINERS:
            inc.containers.append(cid)
        for p in pids:
            if p not in inc.pids:
                inc.pids.append(p)
        del inc.pids[:-_MAX_PIDS]
        for tactic in tactics:
            if tactic not in inc.tactic_first_ns:
                inc.tactic_first_ns[tactic] = t
                inc.tactics.append(tactic)
        for tech in techniques_of(alert.tags):
            if tech not in inc.techniques:
                inc.techniques.append(tech)
        inc.score = score(inc)
        inc.severity = severity_of(inc.score)


def _drop(index: dict[K, str], incident_id: str) -> None:
    for k in [k for k, v in index.items() if v == incident_id]:
        del index[k]


def _alert_entry(alert: Alert, cid: str | None, tactics: list[str]) -> TimelineEntry:
    data: dict[str, Any] = {"alert": alert.id, "rule": alert.rule, "priority": alert.priority}
    if cid:
        data["container"] = cid
    if tactics:
        data["tactics"] = tactics
    if alert.count > 1:
        data["count"] = alert.count
    return TimelineEntry(alert.time_ns, "alert", f"{alert.priority}: {alert.output}"[:500], data=data)
