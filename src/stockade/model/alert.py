"""Alerts, in Falco's JSON shape plus Stockade's own fields."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from stockade.model.timeutil import format_time_ns

#: Falco's priorities, most severe first. Index = severity rank (0 is the worst).
PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIO_ALIASES = {p.lower(): p for p in PRIORITIES} | {"info": "Informational"}


def normalize_priority(value: str) -> str | None:
    """'WARNING', 'warning', 'Info' -> canonical Falco name; None if unknown."""
    return _PRIO_ALIASES.get(str(value).strip().lower())


def priority_rank(priority: str) -> int:
    """0 = Emergency ... 7 = Debug; unknown -> 7."""
    p = normalize_priority(priority)
    return PRIORITIES.index(p) if p else len(PRIORITIES) - 1


def new_id() -> str:
    """A new random id (32 hex digits)."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class Alert:
    """An alert: Falco's JSON alert fields plus Stockade's (id, workload, event ids, count)."""

    time_ns: int
    rule: str
    priority: str
    output: str
    output_fields: dict[str, Any]
    source: str
    tags: list[str]
    hostname: str
    id: str = field(default_factory=new_id)
    workload: str | None = None
    event_ids: list[str] = field(default_factory=list)
    #: how many identical alerts this one stands for (burst aggregation)
    count: int = 1
    #: extra Stockade details (sequence steps, matched exception names, ...)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_falco_json(self) -> dict[str, Any]:
        """Falco's alert JSON (what falcosidekick takes) plus a `stockade` object."""
        st: dict[str, Any] = {
            "id": self.id,
            "workload": self.workload,
            "event_ids": self.event_ids,
            "count": self.count,
        }
        if self.extra:
            st.update(self.extra)
        return {
            "time": format_time_ns(self.time_ns),
            "rule": self.rule,
            "priority": self.priority,
            "output": self.output,
            "output_fields": self.output_fields,
            "source": self.source,
            "tags": self.tags,
            "hostname": self.hostname,
            "stockade": st,
        }

    @classmethod
    def from_falco_json(cls, d: dict[str, Any]) -> Alert:
        """The alert a Falco JSON alert describes (Stockade's own keys read back when present)."""
        from stockade.model.timeutil import now_ns, parse_time_ns

        st = d.get("stockade") or {}
        t = d.get("time")
        return cls(
            time_ns=(parse_time_ns(t) if isinstance(t, str) else None) or now_ns(),
            rule=str(d.get("rule", "")),
            priority=normalize_priority(str(d.get("priority", ""))) or "Debug",
            output=str(d.get("output", "")),
            output_fields=dict(d.get("output_fields") or {}),
            source=str(d.get("source", "syscall")),
            tags=list(d.get("tags") or []),
            hostname=str(d.get("hostname", "")),
            id=str(st.get("id") or new_id()),
            workload=st.get("workload"),
            event_ids=list(st.get("event_ids") or []),
            count=int(st.get("count") or 1),
            extra={k: v for k, v in st.items() if k not in ("id", "workload", "event_ids", "count")},
        )
