"""An incident: alerts of one workload and attack chain, with a score, a status and a timeline.

Statuses move ``open`` -> ``investigating`` -> ``contained`` -> ``resolved`` (any order a
responder chooses; a resolved incident takes no new alerts: a new one opens). The timeline holds
every alert, response action, evidence bundle, state change and note, in time order.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from stockade.model.timeutil import format_time_ns

__all__ = ["STATUSES", "TIMELINE_KINDS", "Incident", "TimelineEntry", "new_incident_id"]

STATUSES: Final[tuple[str, ...]] = ("open", "investigating", "contained", "resolved")
#: what a timeline entry records
TIMELINE_KINDS: Final[tuple[str, ...]] = ("alert", "action", "evidence", "state", "note")


def new_incident_id(time_ns: int) -> str:
    """``inc-YYYYmmdd-`` and 8 random hex digits."""
    return f"inc-{format_time_ns(time_ns)[:10].replace('-', '')}-{secrets.token_hex(4)}"


@dataclass(slots=True)
class TimelineEntry:
    """One thing that happened to an incident."""

    time_ns: int
    kind: str
    summary: str
    actor: str = "stockade"
    data: dict[str, Any] = field(default_factory=dict)
    #: the store's order of entries (assigned when stored)
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as the API and `incidents show --output json` give it."""
        return {
            "seq": self.seq,
            "time": format_time_ns(self.time_ns),
            "time_ns": self.time_ns,
            "kind": self.kind,
            "actor": self.actor,
            "summary": self.summary,
            "data": self.data,
        }


@dataclass(slots=True)
class Incident:
    """An incident (module docstring). ``alert_ids`` and the timeline live in their own tables."""

    id: str
    #: what grouped its alerts: ``workload:ID``, ``container:ID`` or ``host:NAME``
    key: str
    hostname: str
    created_ns: int
    first_ns: int
    last_ns: int
    updated_ns: int
    title: str
    workload: str | None = None
    status: str = "open"
    owner: str | None = None
    score: float = 0.0
    severity: str = "low"
    #: the worst alert priority
    priority: str = "Debug"
    alert_count: int = 0
    containers: list[str] = field(default_factory=list)
    #: alert count per rule
    rules: dict[str, int] = field(default_factory=dict)
    #: tactics in the order they first appeared, and when
    tactics: list[str] = field(default_factory=list)
    tactic_first_ns: dict[str, int] = field(default_factory=dict)
    techniques: list[str] = field(default_factory=list)
    #: processes its alerts named (pid, ppid, ancestors): later alerts of the same process tree join
    pids: list[int] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    #: when a regulator must have been told (``incidents.notify_within``), if configured
    notify_by_ns: int | None = None
    #: response actions waiting for approval, by id (the runtime's playbooks fill it)
    pending: list[dict[str, Any]] = field(default_factory=list)
    #: ids of the alerts, newest last (a cache of the incident_alerts table, as loaded)
    alert_ids: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether it still takes alerts (not resolved)."""
        return self.status != "resolved"

    def body(self) -> dict[str, Any]:
        """What the store keeps in the row's JSON body (the rest has columns)."""
        return {
            "containers": self.containers,
            "rules": self.rules,
            "tactics": self.tactics,
            "tactic_first_ns": self.tactic_first_ns,
            "techniques": self.techniques,
            "pids": self.pids,
            "notes": self.notes,
            "notify_by_ns": self.notify_by_ns,
            "pending": self.pending,
        }

    def summary(self, now_ns: int | None = None) -> dict[str, Any]:
        """The incident as `incidents list --output json` prints it (one line each)."""
        d: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "score": round(self.score, 1),
            "severity": self.severity,
            "priority": self.priority,
            "title": self.title,
            "workload": self.workload,
            "key": self.key,
            "hostname": self.hostname,
            "containers": self.containers,
            "alerts": self.alert_ids,
            "alert_count": self.alert_count,
            "rules": self.rules,
            "tactics": self.tactics,
            "techniques": self.techniques,
            "owner": self.owner,
            "created": format_time_ns(self.created_ns),
            "first": format_time_ns(self.first_ns),
            "last": format_time_ns(self.last_ns),
            "updated": format_time_ns(self.updated_ns),
            "notify_by": format_time_ns(self.notify_by_ns) if self.notify_by_ns else None,
            "pending_actions": self.pending,
            "notes": self.notes,
        }
        if self.notify_by_ns is not None and now_ns is not None:
            d["notify_in_s"] = round((self.notify_by_ns - now_ns) / 1e9)
        return d
