"""The running manager: engine, pipeline, store, sinks and the API in one process.

`stockade up` and `stockade server` build a :class:`Runtime` and serve it with
:func:`stockade.api.server.serve`: the API on the configured address until SIGINT/SIGTERM, with a
housekeeping thread that closes aggregation windows, flushes stored batches and applies retention.
On stop everything is flushed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from stockade import __version__
from stockade.config import StockadeConfig
from stockade.errors import StockadeError
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.runtime.offline import build_engine
from stockade.runtime.pipeline import Pipeline
from stockade.sinks.interface import Sink

_HOUSEKEEPING_S = 1.0
_RETENTION_EVERY_S = 600.0


class Runtime:
    def __init__(
        self,
        cfg: StockadeConfig,
        *,
        rules: list[str] | None = None,
        extra_sinks: list[Sink] | None = None,
        role: str = "manager",
        sensor: bool = False,
    ) -> None:
        from stockade.sinks.registry import build_sinks
        from stockade.storage.store import Store

        self.cfg = cfg
        self.role = role
        self.started = time.time()
        self.engine, self.notes = build_engine(cfg, rules)
        self.store = Store.from_config(cfg)
        try:
            self.sinks: list[Sink] = build_sinks(cfg.sinks, data_dir=cfg.data_dir) + list(extra_sinks or [])
        except Exception:
            self.store.close()
            raise
        self.pipeline = Pipeline(
            self.engine,
            self.sinks,
            store=self.store,
            aggregate_window_s=cfg.engine.aggregate_window_s,
            record_events=cfg.storage.record_events,
            live=True,
        )
        self.sensor = None
        if sensor and cfg.sensor.backend != "none":
            from stockade.runtime.sensing import SensorRunner

            try:
                self.sensor = SensorRunner(cfg, self.pipeline, self.engine.evttypes("syscall"))
            except Exception:
                self.store.close()
                raise
        self._stop = threading.Event()
        self._last_events = 0
        self._last_time = time.time()
        self._rate = 0.0

    # -- RuntimeView (what the API serves) ----------------------------------------------------------
    def rules_info(self) -> list[dict[str, Any]]:
        return self.engine.rules_info()

    def ingest(self, events: list[Event]) -> int:
        return self.pipeline.ingest(events)

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        return self.pipeline.ingest_alerts(alerts)

    def record(self, events: list[Event]) -> None:
        self.pipeline.record(events)

    def status(self) -> dict[str, Any]:
        ps = self.pipeline.stats
        return {
            "version": __version__,
            "role": self.role,
            "hostname": self.cfg.hostname,
            "uptime_s": round(time.time() - self.started, 1),
            "sensor": (
                self.sensor.status()
                if self.sensor is not None
                else {"backend": None, "note": "no sensor in this process (events arrive through the API)"}
            ),
            "rules": {
                "loaded": len(self.engine.ruleset.rules),
                "active": self.engine.active_rules,
                "files": list(self.engine.ruleset.files),
                "notes": list(self.notes),
            },
            "events": {"total": ps.events, "per_second": round(self._rate, 1)},
            "alerts": {"total": ps.alerts, "forwarded": ps.forwarded},
            "drops": {
                "delivery_errors": ps.delivery_errors,
                "storage_errors": ps.storage_errors,
                "sources": {n: {"malformed": s.malformed} for n, s in ps.sources.items()},
            },
            "engine": self.engine.stats.to_dict(),
            "sinks": [{"name": s.name, **_stats_dict(s)} for s in self.sinks],
            "errors": list(ps.last_errors),
        }

    # -- running ---------------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        last_retention = 0.0
        while not self._stop.wait(_HOUSEKEEPING_S):
            now = time.time()
            n = self.pipeline.stats.events
            self._rate = (n - self._last_events) / max(now - self._last_time, 1e-6)
            self._last_events, self._last_time = n, now
            self.pipeline.tick()
            if now - last_retention >= _RETENTION_EVERY_S:
                last_retention = now
                try:
                    self.store.apply_retention()
                except StockadeError as e:
                    self.pipeline.stats.error(f"retention: {e}")

    def start(self) -> None:
        """Start the housekeeping thread (aggregation windows, stored batches, retention)."""
        threading.Thread(target=self._housekeeping, name="stockade-housekeeping", daemon=True).start()
        if self.sensor is not None:
            self.sensor.start()

    def close(self) -> None:
        self._stop.set()
        if self.sensor is not None:
            self.sensor.close()
        from stockade.sinks.registry import close_all

        self.pipeline.close()
        for problem in close_all(self.sinks):
            self.pipeline.stats.error(problem)
        self.store.close()


def _stats_dict(s: Sink) -> dict[str, Any]:
    st = s.stats
    return {k: getattr(st, k) for k in ("sent", "failed", "retried", "spooled", "dropped") if hasattr(st, k)}
