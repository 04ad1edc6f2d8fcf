"""Alert sinks: each delivers alerts somewhere (stdout, file, syslog, webhook, the store).

Adding a sink is one new file implementing :class:`Sink` plus one line in
:mod:`stockade.sinks.registry`. `emit` must not block the pipeline for long: slow destinations
queue (bounded) and spill to disk; nothing is dropped silently: what cannot be delivered is
counted in ``stats`` and, where the sink has a spool, kept on disk for later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stockade.errors import SinkError
from stockade.model.alert import Alert

__all__ = ["Sink", "SinkError", "SinkStats"]


@dataclass(slots=True)
class SinkStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    spooled: int = 0
    dropped: int = 0


class Sink(Protocol):
    name: str
    stats: SinkStats

    def emit(self, alert: Alert) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
