"""Burst aggregation: identical alerts within a window become one alert with a count.

Two alerts are identical when they have the same rule, priority, source, hostname and output
text. If the output fields hold the event time or number (``evt.time``, ``evt.num``, ...),
which make every output unique, those fields are left out and the other output fields compared.

The first alert of a kind is passed on at once (an incident is never delayed) and opens a window
of ``window_s`` seconds. Repeats inside the window are counted; when the window closes they are
passed on as *one* alert: the last repeat, with ``count`` = the number of repeats and
``extra["first_time"]`` / ``extra["last_time"]`` (RFC 3339) spanning them. A window that had
repeats is renewed, so a steady stream yields one alert per window. Windows run on alert time
(``Alert.time_ns``), so a replayed recording aggregates as it did live; :meth:`Aggregator.tick`
closes windows that ended before ``now_ns``, :meth:`Aggregator.flush` closes all of them.

Nothing is dropped: the sum of ``count`` over everything passed on equals the sum over everything
received.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import orjson

from stockade.model.alert import Alert, new_id
from stockade.model.timeutil import format_time_ns

__all__ = ["VOLATILE_FIELDS", "AggregateStats", "Aggregator"]

#: output fields that differ on every event; left out of the identity of an alert
VOLATILE_FIELDS = frozenset(
    {
        "evt.time",
        "evt.time.s",
        "evt.time.iso8601",
        "evt.datetime",
        "evt.datetime.s",
        "evt.rawtime",
        "evt.rawtime.s",
        "evt.rawtime.ns",
        "evt.reltime",
        "evt.reltime.s",
        "evt.reltime.ns",
        "evt.num",
        "evt.latency",
        "evt.latency.s",
        "evt.latency.ns",
        "ka.stage_timestamp",
        "ka.auditid",
        "jevt.time",
        "jevt.time.iso8601",
        "jevt.rawtime",
    }
)
#: at most this many event ids are kept on an aggregated alert
MAX_EVENT_IDS = 100


@dataclasses.dataclass(slots=True)
class AggregateStats:
    """What the aggregator counted."""

    received: int = 0  # alerts received (sum of their counts)
    passed: int = 0  # alerts passed on (each may stand for several)
    aggregated: int = 0  # aggregated alerts passed on


class _Window:
    __slots__ = ("end", "event_ids", "first_ns", "last", "last_ns", "pending")

    def __init__(self, end: int) -> None:
        self.end = end
        self.pending = 0
        self.first_ns = 0
        self.last_ns = 0
        self.last: Alert | None = None
        self.event_ids: list[str] = []


_Key = tuple[str, str, str, str, str | bytes]


def alert_key(alert: Alert) -> _Key:
    """What makes two alerts identical (see the module docstring)."""
    fields = alert.output_fields
    if fields and not VOLATILE_FIELDS.isdisjoint(fields):
        ident: str | bytes = orjson.dumps(
            {k: v for k, v in fields.items() if k not in VOLATILE_FIELDS},
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=str,
        )
    else:
        ident = alert.output
    return (alert.rule, alert.priority, alert.source, alert.hostname, ident)


class Aggregator:
    """Aggregates bursts of identical alerts and passes alerts on to ``sink_fn``.

    ``window_s`` <= 0 passes every alert through unchanged. ``max_windows`` bounds memory: when
    more kinds of alerts are open at once, the oldest window is closed early (its count passed on).
    Thread-safe; ``sink_fn`` is called outside the internal lock.
    """

    def __init__(self, window_s: float, sink_fn: Callable[[Alert], None], max_windows: int = 100_000) -> None:
        self.window_ns = int(window_s * 1_000_000_000)
        self.sink_fn = sink_fn
        self.max_windows = max_windows
        self.stats = AggregateStats()
        self._windows: dict[_Key, _Window] = {}
        self._front_end: int | None = None  # end of the oldest open window (when to look again)
        self._lock = threading.Lock()

    # ---- internals (lock held) -------------------------------------------------------

    def _aggregated(self, w: _Window) -> Alert:
        assert w.last is not None
        last = w.last
        return dataclasses.replace(
            last,
            id=new_id(),
            count=w.pending,
            event_ids=w.event_ids,
            extra={
                **last.extra,
                "first_time": format_time_ns(w.first_ns),
                "last_time": format_time_ns(w.last_ns),
            },
        )

    def _close(self, key: _Key, w: _Window, out: list[Alert], renew: bool) -> None:
        """Close window `w`: pass on its repeats; renew it if it had any (and `renew`)."""
        del self._windows[key]
        if w.pending:
            out.append(self._aggregated(w))
            self.stats.aggregated += 1
            if renew:
                nw = _Window(w.end + self.window_ns)
                self._windows[key] = nw
        self._front_end = next(iter(self._windows.values())).end if self._windows else None

    def _expire(self, now_ns: int, out: list[Alert]) -> None:
        while self._windows:
            key, w = next(iter(self._windows.items()))
            if w.end > now_ns:
                self._front_end = w.end
                return
            # a renewed window that already ended again (no alerts for a while) simply closes
            self._close(key, w, out, renew=w.end + self.window_ns > now_ns)
        self._front_end = None

    # ---- API -------------------------------------------------------------------------

    def process(self, alert: Alert) -> None:
        """Take one alert: pass it on now (first of its kind) or count it (a repeat)."""
        if self.window_ns <= 0:
            self.stats.received += alert.count
            self.stats.passed += 1
            self.sink_fn(alert)
            return
        out: list[Alert] = []
        key = alert_key(alert)
        t = alert.time_ns
        with self._lock:
            self.stats.received += alert.count
            if self._front_end is not None and t >= self._front_end:
                self._expire(t, out)
            w = self._windows.get(key)
            if w is not None and t >= w.end:  # its window ended (not yet collected): close it now
                self._close(key, w, out, renew=w.end + self.window_ns > t)
                w = self._windows.get(key)
            if w is None:
                self._windows[key] = _Window(t + self.window_ns)
                if self._front_end is None:
                    self._front_end = t + self.window_ns
                out.append(alert)
                if len(self._windows) > self.max_windows:
                    k0, w0 = next(iter(self._windows.items()))
                    self._close(k0, w0, out, renew=False)
            else:
                if not w.pending:
                    w.first_ns = t
                w.pending += alert.count
                w.last_ns = t
                w.last = alert
                if len(w.event_ids) < MAX_EVENT_IDS:
                    w.event_ids.extend(alert.event_ids[: MAX_EVENT_IDS - len(w.event_ids)])
            self.stats.passed += len(out)
        for a in out:
            self.sink_fn(a)

    #: an Aggregator can stand where a sink's emit is expected
    emit = process

    def tick(self, now_ns: int | None = None) -> None:
        """Close the windows that ended before ``now_ns`` (default: the wall clock)."""
        now = time.time_ns() if now_ns is None else now_ns
        out: list[Alert] = []
        with self._lock:
            if self._front_end is not None and now >= self._front_end:
                self._expire(now, out)
            self.stats.passed += len(out)
        for a in out:
            self.sink_fn(a)

    def flush(self) -> None:
        """Close every window now, passing on all counted repeats."""
        out: list[Alert] = []
        with self._lock:
            for key, w in list(self._windows.items()):
                self._close(key, w, out, renew=False)
            self.stats.passed += len(out)
        for a in out:
            self.sink_fn(a)

    close = flush

    def open_windows(self) -> int:
        """How many windows are open."""
        return len(self._windows)
