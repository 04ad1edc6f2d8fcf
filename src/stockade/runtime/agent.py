"""`stockade agent`: the sensor and the engine on a node, shipping to a manager.

The agent evaluates rules locally (so detection does not wait on the network), prints its alerts,
and ships the alerts and their evidence events to the manager (`POST /api/v1/ingest/alerts` and
`/api/v1/ingest/events?evaluate=false`). When the manager is unreachable, what is to be shipped waits
in a disk spool under the data dir and is sent in order when it answers again.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from stockade.config import StockadeConfig
from stockade.model.alert import Alert
from stockade.model.event import EVENT_ID_KEY, Event
from stockade.runtime.offline import build_engine
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.sensing import SensorRunner
from stockade.runtime.shipper import Shipper
from stockade.sinks.interface import Sink


class ShippingStore:
    """Stands where the pipeline expects a store: alerts and evidence go to the manager."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper

    def add_events(self, events: list[Event]) -> None:
        self.shipper.submit(
            "events", [{**e.data, EVENT_ID_KEY: e.id} for e in events if e.source == "syscall"]
        )

    def add_alerts(self, alerts: list[Alert]) -> None:
        self.shipper.submit("alerts", [a.to_falco_json() for a in alerts])


class Agent:
    def __init__(
        self,
        cfg: StockadeConfig,
        manager_url: str,
        *,
        rules: list[str] | None = None,
        sinks: list[Sink] | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine, self.notes = build_engine(cfg, rules)
        self.shipper = Shipper(manager_url, Path(cfg.data_dir) / "spool" / "agent", token=cfg.api.token)
        self.pipeline = Pipeline(
            self.engine,
            list(sinks or []),
            store=ShippingStore(self.shipper),
            aggregate_window_s=cfg.engine.aggregate_window_s,
            record_events="alerts",
            live=True,
        )
        self.sensor = SensorRunner(cfg, self.pipeline, self.engine.evttypes("syscall"))
        self._stop = threading.Event()

    def status(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor.status(),
            "shipper": self.shipper.stats.to_dict(),
            "spool_batches": self.shipper.backlog,
            "events": self.pipeline.stats.events,
            "alerts": self.pipeline.stats.alerts,
        }

    def run(self) -> None:
        """Until SIGINT/SIGTERM (or stop())."""
        previous = {s: signal.signal(s, lambda *_: self._stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.sensor.start()
            while not self._stop.wait(1.0):
                self.pipeline.tick()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.sensor.close()
        self.pipeline.close()
        deadline = time.monotonic() + 5.0
        self.shipper.close(max(0.5, deadline - time.monotonic()))
