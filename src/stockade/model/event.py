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
from typing import Any, Final

from stockade.model.timeutil import event_time_ns

SCHEMA_VERSION = 1
#: in an event an agent ships to its manager: the id the agent gave it (its alerts' event_ids)
EVENT_ID_KEY = "stockade.event_id"
#: the event sources rules are written for (a rule's ``source:``): the one list of them
SYSCALL: Final = "syscall"
K8S_AUDIT: Final = "k8s_audit"
SOURCES: Final = (SYSCALL, K8S_AUDIT)
#: alerts Stockade raises from its own measurements, not from events (container resources)
RESOURCES: Final = "resources"
#: what an alert's ``source`` may be: an event source, or Stockade's own measurements
ALERT_SOURCES: Final = (*SOURCES, RESOURCES)


@dataclass(slots=True)
class Event:
    """One event of a source, with where it came from."""

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
        """The event's own time in ns since the epoch (:func:`event_time_ns`); None if it has none."""
        return event_time_ns(self.data, self.source)
