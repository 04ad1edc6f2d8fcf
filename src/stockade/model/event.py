"""The normalised event.

An :class:`Event` wraps a plain dict:

* ``syscall`` source: a flat object keyed by Falco field names (the JSON Lines recording format,
  documented in docs/events.md, schema version :data:`SCHEMA_VERSION`);
* ``k8s_audit`` source: an ``audit.k8s.io`` Event object as the API server wrote it (``ka.*`` and
  ``jevt.*`` fields are extracted from it), or a flat object of ``ka.*`` keys.

The dict is what rules are evaluated on; the wrapper carries where the event came from so errors
and alerts can point back at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
#: in an event an agent ships to its manager: the id the agent gave it (its alerts' event_ids)
EVENT_ID_KEY = "stockade.event_id"
SOURCES = ("syscall", "k8s_audit")


@dataclass(slots=True)
class Event:
    source: str
    data: dict[str, Any]
    #: where it came from, for reports: "file.jsonl:12", "http", "tetragon:events.json:3"
    origin: str | None = None
    #: stable id of the event within this Stockade (assigned by the pipeline when stored)
    id: str | None = None
    #: extra attributes that are not Falco fields (the original Falco alert, ...); None when there are none
    meta: dict[str, Any] | None = None

    @property
    def time_ns(self) -> int | None:
        if self.source == "syscall":
            t = self.data.get("evt.time", self.data.get("evt.rawtime"))
            return t if isinstance(t, int) else None
        from stockade.model.timeutil import parse_time_ns

        for k in ("stageTimestamp", "requestReceivedTimestamp"):
            v = self.data.get(k)
            if isinstance(v, str):
                return parse_time_ns(v)
        t = self.data.get("evt.time")
        return t if isinstance(t, int) else None
