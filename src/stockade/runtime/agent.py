"""`stockade agent`: the sensor and the engine on a node, shipping to a manager.

The agent evaluates rules locally (so detection does not wait on the network), prints its alerts,
and ships the alerts and their evidence events to the manager (`POST /api/v1/ingest/alerts` and
`/api/v1/ingest/events?evaluate=false`). When the manager is unreachable, what is to be shipped waits
in a disk spool under the data dir and is sent in order when it answers again. SIGHUP reopens its
file sinks and reloads its rules (as `stockade up` does).

What protects the node runs here too (:class:`stockade.runtime.node.NodeGuard`): zero trust
(learning, modes from ``zero_trust.modes`` and promotion, enforcement, the anomaly models) and the
resource monitor, their state in a store of the agent's own (``storage`` of its configuration:
SQLite in its data directory by default); their alerts are shipped like the others. The agent has
no API: modes are set by its configuration's patterns and by promotion, not by `stockade mode set`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stockade.audit.chain import AuditLog
from stockade.audit.node import open_audit_log
from stockade.config import StockadeConfig
from stockade.engine.build import build_engine
from stockade.engine.cache import node_cache_dir
from stockade.model.alert import Alert
from stockade.model.event import EVENT_ID_KEY, Event
from stockade.runtime.auditing import AuditedStore, reload_data
from stockade.runtime.instance import RuntimeFile
from stockade.runtime.node import NodeGuard
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.reload import RulesReloader, hangup
from stockade.runtime.sensing import SensorRunner
from stockade.runtime.shipper import Shipper
from stockade.sinks.interface import Sink
from stockade.storage.store import Store


class ShippingStore:
    """Stands where the pipeline expects a store: alerts and evidence go to the manager."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper

    def add_events(self, events: list[Event]) -> None:
        """Ship the evidence events (syscall ones) to the manager."""
        self.shipper.submit(
            "events", [{**e.data, EVENT_ID_KEY: e.id} for e in events if e.source == "syscall"]
        )

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Ship the alerts to the manager."""
        self.shipper.submit("alerts", [a.to_falco_json() for a in alerts])


class Agent:
    """`stockade agent`: sensor, local engine and pipeline, shipping to a manager (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        manager_url: str,
        *,
        rules: list[str] | None = None,
        sinks: list[Sink] | None = None,
        config_loader: Callable[[], StockadeConfig] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.manager_url = manager_url
        self.say = say or logging.getLogger("stockade.runtime").warning
        self.engine, self.notes = build_engine(cfg, rules, cache_dir=node_cache_dir(cfg))
        self.shipper = Shipper(manager_url, Path(cfg.data_dir) / "spool" / "agent", token=cfg.api.token)
        self.sinks: list[Sink] = list(sinks or [])
        #: the node's own state (zero trust's profiles, modes and policies, resource samples, the
        #: audit log): a store of its own, next to the spool (the manager gets the alerts)
        self.local: Store | None = None
        if cfg.zero_trust.enabled or cfg.resources.enabled or cfg.audit.enabled:
            self.local = Store.from_config(cfg)
        #: the node's audit log: its alerts (also audited by the manager that stores them), mode,
        #: policy and rules changes
        self.audit: AuditLog | None = open_audit_log(cfg, self.local) if self.local is not None else None
        shipping = ShippingStore(self.shipper)
        self.pipeline = Pipeline(
            self.engine,
            self.sinks,
            store=shipping if self.audit is None else AuditedStore(shipping, self.audit),
            aggregate_window_s=cfg.engine.aggregate_window_s,
            record_events="alerts",
            live=True,
        )
        self.guard = NodeGuard()
        if self.local is not None:
            self.guard = NodeGuard.build(cfg, self.local, self.pipeline, self.audit)
        self.pipeline.observer = self.guard.observer()
        self.sensor = SensorRunner(
            cfg, self.pipeline, self.guard.syscalls_needed(cfg, self.engine.evttypes("syscall"))
        )
        self.guard.attach(self.sensor)
        self.reloader = RulesReloader(
            cfg,
            self.pipeline,
            rules,
            config_loader=config_loader,
            sensor=self.sensor,
            on_reload=self._audit_reload,
        )
        self._stop = threading.Event()

    def _audit_reload(self, result: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.record("rules", "reload", reload_data(result))

    def hangup(self) -> None:
        """SIGHUP: reopen the file sinks, then reload the rules."""
        hangup("stockade agent", self.sinks, self.reloader, self.say)
        self.engine = self.pipeline.engine

    def status(self) -> dict[str, Any]:
        """What the agent is doing: rules, sensor, shipper, counters."""
        return {
            "rules": {"active": self.pipeline.engine.active_rules, **self.reloader.status()},
            "sensor": self.sensor.status(),
            "shipper": self.shipper.stats.to_dict(),
            "spool_batches": self.shipper.backlog,
            "events": self.pipeline.stats.events,
            "alerts": self.pipeline.stats.alerts,
            **self.guard.status(),
            "audit": self.audit.status() if self.audit is not None else None,
        }

    def run(self) -> None:
        """Until SIGINT/SIGTERM (or stop())."""
        previous = {s: signal.signal(s, lambda *_: self._stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(
            signal.SIGHUP,
            lambda *_: threading.Thread(target=self.hangup, name="stockade-sighup", daemon=True).start(),
        )
        runtime_file = RuntimeFile(self.cfg, "agent", api_url=None, manager_url=self.manager_url)
        runtime_file.write()
        for problem in runtime_file.problems:
            self.say(f"stockade agent: {problem}")
        try:
            self.guard.start()
            self.sensor.start()
            self.guard.refresh()  # the kernel's watches, now that the sensor's backends run
            while not self._stop.wait(1.0):
                self.pipeline.tick()
                self.guard.tick(self.pipeline.stats)
                if self.audit is not None:
                    self.audit.tick()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            runtime_file.remove()
            self.close()

    def stop(self) -> None:
        """Make run() return."""
        self._stop.set()

    def close(self) -> None:
        """Stop the sensor, save the node's state, flush the pipeline, ship what is left (5 s at most)."""
        self.sensor.close()
        self.guard.close()
        self.pipeline.close()
        if self.audit is not None:
            self.audit.close()
        if self.local is not None:
            self.local.close()
        deadline = time.monotonic() + 5.0
        self.shipper.close(max(0.5, deadline - time.monotonic()))
