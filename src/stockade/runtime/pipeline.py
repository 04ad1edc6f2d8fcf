"""The pipeline: what happens to an event, stage by stage.

::

    source ──▶ enrich ──▶ engine ──▶ alerts ──▶ aggregate ──▶ deliver: sinks, store
              (sensor)                (ids, external alerts, mutes, recording)

1. **source**: a :mod:`stockade.sources` source (a file, the API) gives :class:`Event` s, or
   batches of their data (:meth:`Pipeline.run`); the sensor (:mod:`stockade.runtime.sensing`)
   gives raw records.
2. **enrich**, sensor records only: :class:`stockade.sensor.enrich.Enricher` adds the process tree,
   the container and the users, run by :class:`~stockade.runtime.sensing.SensorRunner` in its own
   thread before :meth:`Pipeline.handle` (a container lookup never holds the pipeline's lock).
3. **engine**: :class:`stockade.engine.Engine` evaluates the rules (:meth:`Pipeline._handle`; a
   batch at a time in :meth:`Pipeline._run_batches`); then the **observer** (zero trust,
   :mod:`stockade.runtime.zerotrust`) learns the event or checks it against its workload's policy.
4. **alerts**: event ids, the external alert an event carries (Falco's), the mutes
   (:mod:`stockade.runtime.mutes`), events kept for the store (:meth:`Pipeline._alerts`).
5. **aggregate**: :class:`stockade.runtime.stages.aggregate.Aggregator` passes bursts of identical
   alerts on as one.
6. **deliver**: every sink at once, the store in batches (:meth:`Pipeline._deliver`,
   :meth:`Pipeline._flush_store`).

Everything that is dropped or fails is counted, never silent.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from stockade.engine import Engine
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.model.event import Event
from stockade.runtime.mutes import MuteSet
from stockade.runtime.stages.aggregate import Aggregator
from stockade.sinks.interface import Sink
from stockade.sources.interface import Source, SourceStats

#: how often (events) the pipeline closes aggregation windows and flushes stored batches
_TICK_EVERY = 4096
_STORE_BATCH = 512


class EventStore(Protocol):
    """Where the pipeline keeps alerts and events (:class:`stockade.storage.store.Store`, or the
    agent's shipping store that sends them to its manager)."""

    def add_events(self, events: list[Event]) -> None:
        """Keep events (a batch)."""
        ...

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Keep alerts (a batch)."""
        ...


class DataBatch(Protocol):
    """Decoded events' data from a source that gives them in batches (:meth:`JsonlSource.data_batches`)."""

    datas: list[dict[str, Any]]

    def origin(self, i: int) -> str:
        """Where event `i` of the batch came from (``file:line``)."""
        ...


@dataclass(slots=True)
class PipelineStats:
    """What the pipeline counted: events in, alerts out, failures."""

    events: int = 0
    alerts: int = 0
    #: external alerts (Falco's) passed through
    forwarded: int = 0
    delivery_errors: int = 0
    storage_errors: int = 0
    #: every failure (delivery, storage, retention, closing a sink), the latest kept
    problems: ErrorLog = field(default_factory=lambda: ErrorLog("pipeline"))
    #: alerts passed on (raised and forwarded, mutes applied), per (rule, priority)
    alerts_by: Counter[tuple[str, str]] = field(default_factory=Counter)
    sources: dict[str, SourceStats] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    @property
    def last_errors(self) -> list[str]:
        """The latest failures, oldest first."""
        return self.problems.errors

    def error(self, msg: str) -> None:
        """Record one failure."""
        self.problems.report(msg)


class Pipeline:
    """The stages from the engine on (module docstring), for events from any number of sources.

    Thread-safe: `handle` may be called from the API's threads and a source loop at once.
    """

    def __init__(
        self,
        engine: Engine,
        sinks: Iterable[Sink | Callable[[Alert], None]] = (),
        *,
        store: EventStore | None = None,
        aggregate_window_s: float = 0.0,
        record_events: str = "alerts",
        forward_external: bool = True,
        live: bool = False,
        mutes: MuteSet | None = None,
        observer: Callable[[dict[str, Any]], list[Alert]] | None = None,
    ) -> None:
        # the stages, in the order an event meets them
        self._engine = engine
        #: the engine's per-source runners (Engine.runners), for the per-event hot path
        self._runners = engine.runners()
        #: alerts a mute silences are counted there, not passed on
        self.mutes = mutes
        #: sees every syscall event after the engine and may raise alerts of its own (zero trust:
        #: stockade.runtime.zerotrust); set before events flow
        self.observer = observer
        self.aggregator = Aggregator(aggregate_window_s, self._deliver)
        self.sinks = list(sinks)
        #: (name, emit) of each sink; a plain callable is its own emit
        self._emitters = [(str(getattr(s, "name", s)), _emit_of(s)) for s in self.sinks]
        self.store = store
        #: which events the store keeps: "all", "alerts" (those that raised one), "none"
        self.record_events = record_events if store is not None else "none"
        self.forward_external = forward_external
        #: live: aggregation windows close on the wall clock; replay: on the events' own time
        self.live = live
        self.stats = PipelineStats()
        self._lock = threading.RLock()
        self._pending_alerts: list[Alert] = []
        self._pending_events: list[Event] = []
        self._since_tick = 0

    @property
    def engine(self) -> Engine:
        """The engine evaluating events now (:meth:`swap_engine` replaces it)."""
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        self._engine = engine
        self._runners = engine.runners()

    # -- 1. source: events in ---------------------------------------------------------------------
    def handle(self, event: Event) -> list[Alert]:
        """Take one event through every stage; the alerts it raised (mutes applied)."""
        with self._lock:
            return self._handle(event)

    def ingest(self, events: Iterable[Event]) -> int:
        """Evaluate a batch (from the API); returns the alerts produced."""
        n = 0
        with self._lock:
            for ev in events:
                n += len(self._handle(ev))
            self._tick()
        return n

    def ingest_alerts(self, alerts: Iterable[Alert], *, external: bool = True) -> int:
        """Pass alerts raised outside the engine through mutes, aggregation, sinks and storage;
        `external`: they came from elsewhere (counted as forwarded), not from this node's enforcers."""
        n = 0
        with self._lock:
            for a in alerts:
                if external:
                    self.stats.forwarded += 1
                else:
                    self.stats.alerts += 1
                if self.mutes is not None and not self.mutes.filter([a]):
                    continue
                self.stats.alerts_by[a.rule, a.priority] += a.count
                self.aggregator.process(a)
                n += 1
            self._tick()
        return n

    def record(self, events: Iterable[Event]) -> None:
        """Keep events in the store without evaluating them."""
        with self._lock:
            for ev in events:
                if ev.id is None:
                    ev.id = uuid.uuid4().hex
                self._pending_events.append(ev)
            self._tick()

    def run(self, source: Source, stop: threading.Event | None = None) -> None:
        """Consume a source to its end (or until `stop` is set)."""
        self.stats.sources[source.name] = source.stats
        batches: Callable[[], Iterable[DataBatch]] | None = getattr(source, "data_batches", None)
        if batches is not None and self.record_events != "all":
            self._run_batches(source.name, batches(), stop)
        else:
            for ev in source.events():
                self.handle(ev)
                if stop is not None and stop.is_set():
                    break
        self.tick()

    # -- 3. engine --------------------------------------------------------------------------------
    def _handle(self, event: Event) -> list[Alert]:
        # the per-event hot path (the sensor's every event): the engine's runner called directly,
        # and the alert stage only for an event that raised alerts, carries meta or is recorded
        self.stats.events += 1
        record_all = self.record_events == "all"
        if record_all and event.id is None:
            event.id = uuid.uuid4().hex
        run = self._runners.get(event.source)
        alerts = self._engine.process(event) if run is None else run(event.data, event)
        if self.observer is not None and event.source == "syscall":
            more = self.observer(event.data)
            if more:
                alerts = [*alerts, *more]
        if alerts or event.meta or record_all:
            alerts = self._alerts(event, alerts)
        self._since_tick += 1
        if self._since_tick >= _TICK_EVERY or len(self._pending_events) >= _STORE_BATCH:
            self._tick()
        return alerts

    def _run_batches(self, name: str, batches: Iterable[DataBatch], stop: threading.Event | None) -> None:
        """The same as handling each event, for a source that gives its events' data in batches
        (:meth:`JsonlSource.data_batches`, events without ``meta``): the engine evaluates a batch in
        one call, and only the events that raise alerts are wrapped in an :class:`Event`. Not with
        ``record_events="all"`` (every event is then stored, with an id given before evaluation)."""
        for b in batches:
            datas = b.datas
            with self._lock:
                self.stats.events += len(datas)
                for i, alerts in self._engine.process_batch(name, datas):
                    self._alerts(Event(name, datas[i], b.origin(i)), alerts)
                    if len(self._pending_events) >= _STORE_BATCH:
                        self._tick()
                self._since_tick += len(datas)
                if self._since_tick >= _TICK_EVERY:
                    self._tick()
            if stop is not None and stop.is_set():
                break

    def swap_engine(self, engine: Engine) -> Engine:
        """Evaluate the next events with `engine`; the previous one. Atomic: an event is evaluated
        wholly by one engine (the swap waits for the event in progress)."""
        with self._lock:
            old = self._engine
            self.engine = engine
        return old

    # -- 4. alerts: ids, external alerts, mutes, recording ----------------------------------------
    def _alerts(self, event: Event, alerts: list[Alert]) -> list[Alert]:
        """What follows the engine for one event, up to the aggregator; the alerts passed on."""
        if alerts and event.id is None and self.record_events == "alerts":
            event.id = uuid.uuid4().hex
            for a in alerts:
                a.event_ids = [event.id]
        ext = event.meta.get("falco_alert") if self.forward_external and event.meta else None
        if ext is not None:
            fa = Alert.from_falco_json(ext)
            fa.extra.setdefault("origin", "falco")
            if event.id:
                fa.event_ids = [event.id]
            alerts = [fa, *alerts]
            self.stats.forwarded += 1
        if alerts and self.mutes is not None:
            alerts = self.mutes.filter(alerts, event.data)
        if self.record_events == "all" or (alerts and self.record_events == "alerts"):
            self._pending_events.append(event)
        # -- 5. aggregate
        for a in alerts:
            self.stats.alerts += 1
            self.stats.alerts_by[a.rule, a.priority] += 1
            self.aggregator.process(a)
        return alerts

    # -- 6. deliver: sinks, store -----------------------------------------------------------------
    def _deliver(self, alert: Alert) -> None:
        """What the aggregator passes on: to every sink now, to the store with the next batch."""
        for name, emit in self._emitters:
            try:
                emit(alert)
            except Exception as e:  # a sink must not stop the pipeline; it is counted and reported
                self.stats.delivery_errors += 1
                self.stats.error(f"sink {name}: {type(e).__name__}: {e}")
        if self.store is not None:
            self._pending_alerts.append(alert)

    def tick(self) -> None:
        """Close the aggregation windows that ended (live) and store what is pending."""
        with self._lock:
            self._tick()

    def _tick(self) -> None:
        self._since_tick = 0
        if self.live:
            self.aggregator.tick()
        self._flush_store()

    def _flush_store(self) -> None:
        if self.store is None or not (self._pending_alerts or self._pending_events):
            return
        events, alerts = self._pending_events, self._pending_alerts
        self._pending_events, self._pending_alerts = [], []
        try:
            if events:
                self.store.add_events(events)
            if alerts:
                self.store.add_alerts(alerts)
        except Exception as e:
            self.stats.storage_errors += len(alerts) + len(events)
            self.stats.error(f"storage: {e}")

    def close(self) -> None:
        """Flush aggregation windows, stored batches and sinks."""
        with self._lock:
            self.aggregator.flush()
            self._flush_store()
            for s in self.sinks:
                flush = getattr(s, "flush", None)
                if flush is not None:
                    try:
                        flush()
                    except Exception as e:
                        self.stats.delivery_errors += 1
                        self.stats.error(f"sink {getattr(s, 'name', s)}: {e}")


def _emit_of(sink: Sink | Callable[[Alert], None]) -> Callable[[Alert], None]:
    """A sink's `emit`; a plain callable is its own."""
    return cast("Callable[[Alert], None]", getattr(sink, "emit", sink))
