"""GET /metrics: the runtime's counters in Prometheus' text format (prometheus-client).

A custom collector reads the counters the runtime keeps anyway (`RuntimeView.metrics()`) at scrape
time: nothing is counted twice on the event path. The metric names are in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from stockade.model import apipaths as paths

router = APIRouter(tags=["metrics"])


class RuntimeCollector(Collector):
    """The runtime's counters as Prometheus metrics, read at scrape time."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        """The metrics from one read of the runtime's counters."""
        m: dict[str, Any] = self.runtime.metrics()
        info = InfoMetricFamily("stockade_build", "Stockade's version and this process's role")
        info.add_metric([], {"version": str(m["version"]), "role": str(m["role"])})
        yield info
        yield GaugeMetricFamily(
            "stockade_start_time_seconds", "When this process started (Unix time)", value=m["started"]
        )

        c = CounterMetricFamily("stockade_events", "Events evaluated by the rules", labels=["source"])
        for source, n in sorted(m["events"].items()):
            c.add_metric([source], n)
        yield c
        c = CounterMetricFamily(
            "stockade_malformed_records",
            "Input records that could not be read, per source",
            labels=["source"],
        )
        for source, n in sorted(m["malformed"].items()):
            c.add_metric([source], n)
        yield c
        yield CounterMetricFamily(
            "stockade_rule_eval_errors",
            "Rule evaluations that failed (the rule skipped for the event)",
            value=m["eval_errors"],
        )
        yield CounterMetricFamily(
            "stockade_rule_eval_fallbacks",
            "Events the compiled rules raised on, evaluated by the reference interpreter instead",
            value=m["fallbacks"],
        )

        c = CounterMetricFamily(
            "stockade_alerts",
            "Alerts passed on to storage and sinks (mutes applied)",
            labels=["rule", "priority"],
        )
        for (rule, priority), n in sorted(m["alerts"].items()):
            c.add_metric([rule, priority], n)
        yield c
        yield CounterMetricFamily(
            "stockade_alerts_forwarded", "External alerts (Falco's, agents') received", value=m["forwarded"]
        )
        c = CounterMetricFamily("stockade_alerts_muted", "Alerts a mute silenced", labels=["rule"])
        for rule, n in sorted(m["muted"].items()):
            c.add_metric([rule], n)
        yield c
        yield GaugeMetricFamily("stockade_mutes_active", "Mutes in force", value=m["mutes_active"])

        yield from self._sinks(m)
        yield from self._sensor(m.get("sensor"))

        yield GaugeMetricFamily(
            "stockade_rules_loaded", "Rules in the loaded rules files", value=m["rules_loaded"]
        )
        yield GaugeMetricFamily(
            "stockade_rules_active", "Rules evaluated (enabled, selected)", value=m["rules_active"]
        )
        c = CounterMetricFamily("stockade_rules_reloads", "Rules reloads, by result", labels=["result"])
        for result, n in sorted(m["reloads"].items()):
            c.add_metric([result], n)
        yield c
        if m["last_reload_ok"] is not None:
            yield GaugeMetricFamily(
                "stockade_rules_last_reload_ok",
                "1 if the last rules reload succeeded, 0 if it failed (the previous rules kept)",
                value=1 if m["last_reload_ok"] else 0,
            )

        c = CounterMetricFamily(
            "stockade_enforcement_decisions",
            "Enforcement decisions by action and outcome (no series: this Stockade does not enforce yet)",
            labels=["action", "outcome"],
        )
        for (action, outcome), n in sorted(m["enforcement"].items()):
            c.add_metric([action, outcome], n)
        yield c

    @staticmethod
    def _sinks(m: dict[str, Any]) -> Iterator[Metric]:
        out = CounterMetricFamily(
            "stockade_sink_alerts",
            "Alerts per sink and outcome (sent, failed, retried, spooled, dropped)",
            labels=["sink", "outcome"],
        )
        queue = GaugeMetricFamily(
            "stockade_sink_queue_depth", "Alerts waiting in a sink (queued, spooled)", labels=["sink"]
        )
        for s in m["sinks"]:
            for outcome in ("sent", "failed", "retried", "spooled", "dropped"):
                if outcome in s:
                    out.add_metric([s["name"], outcome], s[outcome])
            queue.add_metric([s["name"]], s["queue"])
        yield out
        yield queue
        drops = CounterMetricFamily(
            "stockade_pipeline_failures",
            "Alerts or events the pipeline could not deliver or store, by cause",
            labels=["cause"],
        )
        drops.add_metric(["delivery"], m["delivery_errors"])
        drops.add_metric(["storage"], m["storage_errors"])
        yield drops

    @staticmethod
    def _sensor(sensor: dict[str, Any] | None) -> Iterator[Metric]:
        if sensor is None:
            return
        c = CounterMetricFamily(
            "stockade_sensor_events", "Events read from the kernel, per backend", labels=["backend"]
        )
        for backend, n in sorted(sensor["events"].items()):
            c.add_metric([backend], n)
        yield c
        c = CounterMetricFamily(
            "stockade_sensor_lost_events",
            "Events a sensor backend lost, by cause",
            labels=["backend", "cause"],
        )
        for (backend, cause), n in sorted(sensor["lost"].items()):
            c.add_metric([backend, cause], n)
        yield c
        c = CounterMetricFamily(
            "stockade_sensor_filtered_events",
            "Calls the kernel filters dropped on purpose (failed calls, paths no rule cares about), by event type",
            labels=["backend", "evt_type"],
        )
        for (backend, evttype), n in sorted(sensor["filtered"].items()):
            c.add_metric([backend, evttype], n)
        yield c
        yield CounterMetricFamily(
            "stockade_sensor_event_errors",
            "Events enrichment or the pipeline failed on",
            value=sensor["event_errors"],
        )
        yield GaugeMetricFamily(
            "stockade_sensor_queue_depth",
            "Batches read from the kernel and not yet evaluated",
            value=sensor["queue"],
        )
        yield GaugeMetricFamily(
            "stockade_sensor_queued_events",
            "Events read from the kernel and not yet evaluated (at most sensor.queue_events)",
            value=sensor["queued_events"],
        )


def registry_for(runtime: Any) -> CollectorRegistry:
    """A registry of its own (not the global one): the runtime's collector and the process's."""
    from prometheus_client import PlatformCollector, ProcessCollector

    reg = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    if runtime is not None:
        reg.register(RuntimeCollector(runtime))
    return reg


@router.get(
    paths.METRICS,
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    """The Prometheus exposition of the process's and the runtime's metrics."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
