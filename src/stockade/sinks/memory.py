"""In-memory sink: keeps the alerts it is given in a list, the test double of every sink.

Tests pass a :class:`MemorySink` wherever the pipeline or the runtime wants sinks and read
:attr:`MemorySink.alerts`. The list is bounded (``max_alerts``): the first alerts are kept and
those beyond are counted in ``stats.dropped``, so a long run cannot eat the memory and nothing is
lost without being counted. Configured as ``type: memory`` it also shows what a running instance
would send, without sending it anywhere.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar

from stockade.model.alert import Alert
from stockade.sinks.interface import SinkContext, SinkEntry, SinkStats
from stockade.sinks.options import Count, SinkOptions
from stockade.sinks.spool import ErrorLog

__all__ = ["MemoryOptions", "MemorySink"]


class MemoryOptions(SinkOptions):
    """The ``options`` of a memory sink."""

    #: alerts kept; those beyond are counted in stats.dropped
    max_alerts: Count = 10_000


class MemorySink:
    """Keeps alerts in :attr:`alerts` (the first ``max_alerts``); thread-safe."""

    Options: ClassVar[type[SinkOptions]] = MemoryOptions

    def __init__(self, name: str = "memory", options: MemoryOptions | None = None) -> None:
        opts = options or MemoryOptions()
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.max_alerts = opts.max_alerts
        #: the alerts emitted, in order (the same list for the sink's whole life)
        self.alerts: list[Alert] = []
        #: how many times flush() was called
        self.flushes = 0
        self.closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, _entry: SinkEntry, options: MemoryOptions, context: SinkContext) -> MemorySink:
        """The sink of a ``type: memory`` entry (which has nothing for it but its options)."""
        return cls(name=context.name, options=options)

    def emit(self, alert: Alert) -> None:
        """Keep the alert, or count it as dropped when the list is full (failed after close)."""
        with self._lock:
            if self.closed:
                self.stats.failed += 1
                self.errors.report("alert emitted after close: not kept")
            elif len(self.alerts) >= self.max_alerts:
                self.stats.dropped += 1
                if self.stats.dropped == 1:
                    self.errors.report(f"more than max_alerts={self.max_alerts} alerts: the rest are dropped")
            else:
                self.alerts.append(alert)
                self.stats.sent += 1

    def flush(self) -> None:
        """Nothing is buffered; counted in :attr:`flushes`."""
        with self._lock:
            self.flushes += 1

    def close(self) -> None:
        """Later alerts are counted as failed; the kept ones stay readable. Safe to call twice."""
        with self._lock:
            self.closed = True

    def clear(self) -> None:
        """Forget the kept alerts (the counters stay)."""
        with self._lock:
            self.alerts.clear()


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = MemorySink
