"""The in-memory sink, the test double of every sink: bounded, and nothing lost uncounted."""

from __future__ import annotations

from collections.abc import Callable

from stockade.model.alert import Alert
from stockade.sinks.memory import MemoryOptions, MemorySink


def test_keeps_the_first_alerts_and_counts_the_rest(make_alert: Callable[..., Alert]) -> None:
    sink = MemorySink(options=MemoryOptions(max_alerts=3))
    alerts = [make_alert(i) for i in range(5)]
    for a in alerts:
        sink.emit(a)
    assert sink.alerts == alerts[:3]
    assert (sink.stats.sent, sink.stats.dropped) == (3, 2)
    assert sink.errors.errors == ["more than max_alerts=3 alerts: the rest are dropped"]  # said once


def test_after_close_alerts_fail_and_the_kept_ones_stay(make_alert: Callable[..., Alert]) -> None:
    sink = MemorySink()
    sink.emit(make_alert(0))
    sink.flush()
    sink.close()
    sink.emit(make_alert(1))
    assert len(sink.alerts) == 1 and sink.flushes == 1 and sink.closed
    assert (sink.stats.sent, sink.stats.failed) == (1, 1)
    sink.clear()
    assert sink.alerts == [] and sink.stats.sent == 1
