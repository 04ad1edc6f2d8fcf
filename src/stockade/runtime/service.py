"""The running manager: engine, pipeline, store, sinks and the API in one process.

`stockade up` and `stockade server` build a :class:`Runtime` and serve it with
:func:`stockade.api.server.serve`: the API on the configured address until SIGINT/SIGTERM, with a
housekeeping thread that closes aggregation windows, flushes stored batches, forgets expired mutes
and applies retention. SIGHUP (:meth:`Runtime.hangup`) reopens the file sinks and reloads the rules.
On stop everything is flushed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stockade import __version__
from stockade.audit.chain import AuditLog
from stockade.audit.node import open_audit_log
from stockade.config import StockadeConfig
from stockade.engine import Engine
from stockade.engine.build import build_engine
from stockade.engine.cache import node_cache_dir
from stockade.errors import StockadeError, UsageError
from stockade.inventory.opens import INTEREST_CONDITION, OPEN_EVTTYPES, OpenTracker
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.model.mute import Mute, MuteRequest
from stockade.rules.parser import parse_condition
from stockade.runtime.auditing import AuditedStore, reload_data
from stockade.runtime.builtin_rules import BUILTIN_RULES
from stockade.runtime.certwatch import CertMonitor, NoCerts
from stockade.runtime.driftwatch import DriftMonitor, NoDrift
from stockade.runtime.incidents import IncidentService
from stockade.runtime.instance import RuntimeFile
from stockade.runtime.mutes import Clock, MuteSet
from stockade.runtime.node import NodeGuard, chain_observers
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.reload import RulesReloader, hangup
from stockade.runtime.resources import NoResources, ResourceMonitor
from stockade.runtime.vulnwatch import NoVulnWatch, VulnWatch
from stockade.runtime.zerotrust import ZeroTrust
from stockade.sinks.interface import Sink

if TYPE_CHECKING:  # evidence is imported on first use (the API's evidence routes)
    from stockade.evidence.desk import EvidenceDesk

log = logging.getLogger("stockade.runtime")

_HOUSEKEEPING_S = 1.0
_RETENTION_EVERY_S = 600.0


class NoIncidents(StockadeError):
    """An incident change on an instance where incidents are disabled (``incidents.enabled``)."""

    http_status = 409
    problem_type = "no-incidents"
    title = "Incidents are not grouped here"


class NoResponder(StockadeError):
    """A response action asked of an instance that cannot act on containers (no sensor here)."""

    http_status = 409
    problem_type = "no-responder"
    title = "Response actions do not run here"


class NoZeroTrust(StockadeError):
    """A zero-trust request to an instance that runs none (no sensor here)."""

    http_status = 409
    problem_type = "no-zero-trust"
    title = "Zero trust is not running here"


class Runtime:
    """The running manager (module docstring); what the API serves (RuntimeView)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        *,
        rules: list[str] | None = None,
        extra_sinks: list[Sink] | None = None,
        role: str = "manager",
        sensor: bool = False,
        config_loader: Callable[[], StockadeConfig] | None = None,
        clock: Clock = time.time_ns,
        say: Callable[[str], None] | None = None,
    ) -> None:
        """`config_loader` reads the configuration again for a rules reload (its ``engine``
        section); `clock` (ns) decides when mutes expire; `say` prints what SIGHUP did."""
        from stockade.sinks.build import build_sinks
        from stockade.storage.store import Store

        self.cfg = cfg
        self.role = role
        self.started = time.time()
        self.say = say or log.warning
        engine, self.notes = build_engine(cfg, rules, cache_dir=node_cache_dir(cfg))
        self.store = Store.from_config(cfg)
        try:
            #: the tamper-evident audit log (stockade.audit; None with audit.enabled false): alerts,
            #: API changes, mode, policy, rules and mute changes; `runtime.audit.append(kind, subject,
            #: data, actor=...)` adds a record of another kind (response, incident)
            self.audit: AuditLog | None = open_audit_log(cfg, self.store)
            self.mutes = MuteSet(clock)
            self.mutes.load(self.store.list_mutes(active_at_ns=clock()))
            self.sinks: list[Sink] = build_sinks(cfg.sinks, data_dir=cfg.data_dir) + list(extra_sinks or [])
        except Exception:
            self.store.close()
            raise
        #: alerts grouped into incidents (a sink of the pipeline's, not listed among `sinks`)
        self.incident_service: IncidentService | None = None
        if cfg.incidents.enabled:
            from stockade.storage.incidents import IncidentStore

            self.incident_service = IncidentService(
                cfg.incidents, IncidentStore(self.store), audit=self._audit
            )
        #: response actions and playbooks (stockade.runtime.response), where the sensor runs
        self.response: Any = None
        #: evidence capture (made on first use, or with the responder)
        self._evidence: EvidenceDesk | None = None
        self.pipeline = Pipeline(
            engine,
            [*self.sinks, *([self.incident_service] if self.incident_service is not None else [])],
            store=self.store if self.audit is None else AuditedStore(self.store, self.audit),
            aggregate_window_s=cfg.engine.aggregate_window_s,
            record_events=cfg.storage.record_events,
            live=True,
            mutes=self.mutes,
        )
        self.sensor = None
        #: the code files the sensor saw opened, per container (vulnerabilities.track_opens)
        self.opens: OpenTracker | None = None
        #: zero trust (workloads, profiles, modes, enforcement, anomaly models) and the resource
        #: monitor, where the sensor runs
        self.guard = NodeGuard.build(cfg, self.store, self.pipeline, self.audit) if sensor else NodeGuard()
        self.zt: ZeroTrust | None = self.guard.zt
        self.res: ResourceMonitor | None = self.guard.res
        self.pipeline.observer = self.guard.observer()
        if sensor and cfg.sensor.backend != "none":
            # before the sensor: a broken playbook file stops the start before anything is loaded
            from stockade.runtime.response import Responder

            try:
                self.response = Responder(
                    cfg,
                    incidents=self.incident_service,
                    sinks=self.sinks,
                    store=self.store,
                    evidence=self.evidence(),
                    audit=self._audit,
                )
            except Exception:
                self.store.close()
                raise
            if self.incident_service is not None:
                self.incident_service.on_correlated = self.response.on_correlated
        if sensor and cfg.sensor.backend != "none":
            from stockade.runtime.sensing import SensorRunner

            needed = self.guard.syscalls_needed(cfg, engine.evttypes("syscall"))
            self.opens = open_tracker(cfg)
            try:
                self.sensor = SensorRunner(
                    cfg,
                    self.pipeline,
                    needed if self.opens is None or needed is None else needed | OPEN_EVTTYPES,
                    extra_interest=() if self.opens is None else (parse_condition(INTEREST_CONDITION),),
                )
                self.guard.attach(self.sensor)
            except Exception:
                self.store.close()
                raise
        #: the packages of what runs here, ranked findings, the reaction (where the sensor runs)
        self.vulns: VulnWatch | None = self._vuln_watch(cfg)
        self.reloader = RulesReloader(
            cfg,
            self.pipeline,
            rules,
            config_loader=config_loader,
            sensor=self.sensor,
            on_reload=self._audit_reload,
        )
        self.runtime_file: RuntimeFile | None = None
        self._stop = threading.Event()
        self._last_events = 0
        self._last_time = time.time()
        self._rate = 0.0

    def _vuln_watch(self, cfg: StockadeConfig) -> VulnWatch | None:
        """Runtime-aware vulnerabilities where the sensor runs (vulnerabilities.watch); the open
        tracker (if any) joins the pipeline's observer."""
        if self.sensor is None or not cfg.vulnerabilities.watch:
            return None
        watch = VulnWatch(
            cfg,
            lambda alerts: self.pipeline.ingest_alerts(alerts, external=False),
            store=self.store,
            tracker=self.opens,
            responder=self.response,
            audit=self._audit,
        )
        if self.opens is not None:
            self.pipeline.observer = chain_observers(self.pipeline.observer, self.opens.observe)
        return watch

    def _audit(self, kind: str, subject: str, data: dict[str, Any], actor: str) -> None:
        """A record of the audit log (incidents, response actions); never raises."""
        if self.audit is not None:
            self.audit.record(kind, subject, data, actor=actor)

    @property
    def engine(self) -> Engine:
        """The engine evaluating events now (a reload replaces it)."""
        return self.pipeline.engine

    # -- RuntimeView (what the API serves) ----------------------------------------------------------
    def rules_info(self) -> list[dict[str, Any]]:
        """Every loaded rule with its hits."""
        return self.engine.rules_info()

    def ingest(self, events: list[Event]) -> int:
        """Evaluate and store events; how many alerts they raised."""
        return self.pipeline.ingest(events)

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        """Pass external alerts through mutes, aggregation, sinks and storage."""
        return self.pipeline.ingest_alerts(alerts)

    def record(self, events: list[Event]) -> None:
        """Store events without evaluating them."""
        self.pipeline.record(events)

    def status(self) -> dict[str, Any]:
        """What `stockade status` and ``GET /api/v1/status`` show."""
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
                **self.reloader.status(),
            },
            "events": {"total": ps.events, "per_second": round(self._rate, 1)},
            "alerts": {"total": ps.alerts, "forwarded": ps.forwarded, "muted": self.mutes.muted_total},
            "mutes": {"active": len(self.mutes.active()), "muted": dict(self.mutes.muted)},
            "drops": {
                "delivery_errors": ps.delivery_errors,
                "storage_errors": ps.storage_errors,
                "sources": {n: {"malformed": s.malformed} for n, s in ps.sources.items()},
            },
            "engine": self.engine.stats.to_dict(),
            "zero_trust": self.zt.status() if self.zt is not None else None,
            "resources": self.res.status() if self.res is not None else None,
            "certs": self.guard.certs.status() if self.guard.certs is not None else None,
            "drift": self.guard.drift.status() if self.guard.drift is not None else None,
            "inventory": self.guard.inv.status() if self.guard.inv is not None else None,
            "vulnerabilities": self.vulns.status() if self.vulns is not None else None,
            "incidents": self.incident_service.status() if self.incident_service is not None else None,
            "audit": self.audit.status() if self.audit is not None else None,
            "response": self.response.status(probe=False) if self.response is not None else None,
            "sinks": [{"name": s.name, **_stats_dict(s)} for s in self.sinks],
            "errors": list(ps.last_errors),
        }

    def metrics(self) -> dict[str, Any]:
        """The counters /metrics exposes, read now (nothing is counted twice for them)."""
        ps = self.pipeline.stats
        counters = self.reloader.counters()
        sinks = []
        for s in self.sinks:
            pending = getattr(s, "pending", None)
            sinks.append({"name": s.name, **_stats_dict(s), "queue": pending() if callable(pending) else 0})
        sensor: dict[str, Any] | None = None
        if self.sensor is not None:
            backends = {n: b.stats for n, b in list(self.sensor.backends.items())}
            sensor = {
                "events": {n: st.events for n, st in backends.items()},
                "lost": {(n, c): v for n, st in backends.items() for c, v in list(st.lost.items())},
                "filtered": {(n, t): v for n, st in backends.items() for t, v in list(st.filtered.items())},
                "event_errors": self.sensor.consume_errors.total,
                "queue": self.sensor.queue_depth,
                "queued_events": self.sensor.queued_events,
            }
        reloads = self.reloader.reloads
        last = self.reloader.last
        return {
            "role": self.role,
            "version": __version__,
            "started": self.started,
            "events": dict(counters["events"]),
            "eval_errors": counters["eval_errors"],
            "fallbacks": counters["fallbacks"],
            "malformed": {n: st.malformed for n, st in list(ps.sources.items())},
            "alerts": dict(ps.alerts_by),
            "forwarded": ps.forwarded,
            "muted": dict(self.mutes.muted),
            "mutes_active": len(self.mutes.active()),
            "delivery_errors": ps.delivery_errors,
            "storage_errors": ps.storage_errors,
            "sinks": sinks,
            "sensor": sensor,
            "rules_loaded": len(self.engine.ruleset.rules),
            "rules_active": self.engine.active_rules,
            "reloads": dict(reloads),
            "last_reload_ok": None if last is None else last["ok"],
            #: enforcement does not exist yet: the family is exposed with no series
            "enforcement": {},
        }

    def zero_trust(self) -> ZeroTrust:
        """Zero trust on this instance (what the API's zero-trust routes serve)."""
        if self.zt is None:
            raise NoZeroTrust(
                "zero trust runs where the sensor runs (`stockade up` or `stockade agent` with "
                "zero_trust.enabled); this instance has none"
            )
        return self.zt

    def resources(self) -> ResourceMonitor:
        """Resource monitoring on this instance (what the API's resource routes serve)."""
        if self.res is None:
            raise NoResources(
                "resources are sampled where the sensor runs (`stockade up` with resources.enabled); "
                "this instance samples none"
            )
        return self.res

    def certs(self) -> CertMonitor:
        """Certificate scanning on this instance (what ``GET /api/v1/certs`` serves)."""
        if self.guard.certs is None:
            raise NoCerts(
                "certificates are scanned on the node (`stockade up` or `stockade agent` with "
                "certs.enabled); this instance scans none"
            )
        return self.guard.certs

    def drift(self) -> DriftMonitor:
        """Container drift checks on this instance (what the API's drift route serves)."""
        if self.guard.drift is None:
            raise NoDrift(
                "container drift is checked where the containers are (`stockade up` with drift.enabled); "
                "this instance checks none"
            )
        return self.guard.drift

    def vulnerabilities(self) -> VulnWatch:
        """Runtime-aware vulnerabilities on this instance (the API's /vulnerabilities, /inventory/find)."""
        if self.vulns is None:
            raise NoVulnWatch(
                "running workloads are watched where the sensor runs (`stockade up` with "
                "vulnerabilities.watch); this instance watches none"
            )
        return self.vulns

    def incidents(self) -> IncidentService:
        """The incident service (what the API's incident updates go through)."""
        if self.incident_service is None:
            raise NoIncidents("incidents are disabled here (incidents.enabled: false)")
        return self.incident_service

    def responder(self) -> Any:
        """Response actions and playbooks (where the sensor runs)."""
        if self.response is None:
            raise NoResponder(
                "response actions run where the containers are (`stockade up` with its sensor); this instance has none"
            )
        return self.response

    def evidence(self) -> EvidenceDesk:
        """Evidence capture and bundles in this instance's data directory (what the API's evidence
        routes serve): the containers are frozen around a capture; each capture is recorded (on
        its incident by the responder where there is one, in the audit log)."""
        from stockade.evidence.desk import EvidenceDesk

        if self._evidence is None:
            self._evidence = EvidenceDesk(self.cfg.data_dir, store=self.store)
            self._evidence.on_captured = lambda found, bundle, actor: self._audit(
                "evidence", bundle.id, {"container": found.id, "path": str(bundle.path)}, actor or "api"
            )
        return self._evidence

    # -- tuning without restart ------------------------------------------------------------------
    def now_ns(self) -> int:
        """The clock mutes expire by."""
        return self.mutes.clock()

    def reload_rules(self) -> dict[str, Any]:
        """Load the rules again and swap them in; ReloadError (the running rules kept) if they fail."""
        return self.reloader.reload()

    def add_mute(self, request: MuteRequest) -> Mute:
        """Mute a rule the engine has loaded for a workload or everywhere, until an expiry: stored,
        then applied to the next alert."""
        if request.rule not in self.engine.ruleset.rules and request.rule not in BUILTIN_RULES:
            raise UsageError(
                f"rule: no loaded rule is named {request.rule!r} (`stockade rules list` shows the names; "
                f"Stockade's own: {', '.join(sorted(BUILTIN_RULES))})"
            )
        mute = request.mute(self.mutes.clock())
        self.store.add_mute(mute)
        self.mutes.add(mute)
        self._audit_mute("added", mute)
        return mute

    def list_mutes(self, include_expired: bool = False) -> list[Mute]:
        """The stored mutes in force (all of them with `include_expired`), with their hits."""
        now = self.mutes.clock()
        found = self.store.list_mutes(None if include_expired else now)
        for m in found:
            m.hits = self.mutes.hits(m.id)
        return found if include_expired else [m for m in found if m.active(now)]

    def delete_mute(self, mute_id: str) -> Mute:
        """Unmute: the mute with this id (or a unique prefix) is deleted and stops applying at once."""
        mute = self.store.delete_mute(mute_id)
        mute.hits = self.mutes.hits(mute.id)
        self.mutes.remove(mute.id)
        self._audit_mute("removed", mute)
        return mute

    def _audit_mute(self, what: str, mute: Mute) -> None:
        if self.audit is not None:
            data: dict[str, Any] = {"action": what, "rule": mute.rule, "workload": mute.workload}
            data.update(reason=mute.reason, expires_ns=mute.expires_ns)
            self.audit.record("mute", mute.id, data, actor=mute.created_by or "stockade")

    def _audit_reload(self, result: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.record("rules", "reload", reload_data(result))

    def hangup(self) -> None:
        """SIGHUP: reopen the file sinks (after logrotate moved them), then reload the rules."""
        hangup(f"stockade {self.role}", self.sinks, self.reloader, self.say)

    # -- running ---------------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        last_retention = 0.0
        while not self._stop.wait(_HOUSEKEEPING_S):
            now = time.time()
            n = self.pipeline.stats.events
            self._rate = (n - self._last_events) / max(now - self._last_time, 1e-6)
            self._last_events, self._last_time = n, now
            self.pipeline.tick()
            self.mutes.prune()
            self.guard.tick(self.pipeline.stats)
            if self.audit is not None:
                self.audit.tick()
            if now - last_retention >= _RETENTION_EVERY_S:
                last_retention = now
                try:
                    self.store.apply_retention()
                except StockadeError as e:
                    self.pipeline.stats.error(f"retention: {e}")

    def start(self, api_url: str | None = None) -> None:
        """Start the housekeeping thread (aggregation windows, stored batches, retention), write the
        runtime file (how the CLI finds this instance) and start the sensor."""
        threading.Thread(target=self._housekeeping, name="stockade-housekeeping", daemon=True).start()
        self.runtime_file = RuntimeFile(self.cfg, self.role, api_url=api_url)
        self.runtime_file.write()
        for problem in self.runtime_file.problems:
            self.say(f"stockade {self.role}: {problem}")
        self.guard.start()
        if self.incident_service is not None:
            self.incident_service.start()
        if self.response is not None:
            self.response.start()
        if self.sensor is not None:
            self.sensor.start()
            self.guard.refresh()  # the kernel's watches, now that the sensor's backends run
        if self.vulns is not None:
            self.vulns.start()

    def close(self) -> None:
        """Stop: remove the runtime file, stop the sensor, flush the pipeline, close sinks and store."""
        if self.runtime_file is not None:
            self.runtime_file.remove()
        self._stop.set()
        if self.sensor is not None:
            self.sensor.close()
        if self.vulns is not None:
            self.vulns.close()
        self.guard.close()
        from stockade.sinks.build import close_all

        self.pipeline.close()
        for problem in close_all(self.sinks):
            self.pipeline.stats.error(problem)
        if self.incident_service is not None:
            self.incident_service.close()
        if self.response is not None:
            self.response.close()
        if self.audit is not None:
            self.audit.close()  # the last checkpoint, over everything stored
        self.store.close()


def open_tracker(cfg: StockadeConfig) -> OpenTracker | None:
    """The tracker of opened code files, when vulnerabilities are watched with track_opens."""
    v = cfg.vulnerabilities
    return OpenTracker() if v.watch and v.track_opens else None


def _stats_dict(s: Sink) -> dict[str, Any]:
    st = s.stats
    return {k: getattr(st, k) for k in ("sent", "failed", "retried", "spooled", "dropped") if hasattr(st, k)}
