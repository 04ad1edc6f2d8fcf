"""PagerDuty sink: each alert as a ``trigger`` event of the Events API v2.

The event's ``dedup_key`` is the incident the alert belongs to (``alert.extra["incident"]``, an id
or an object with an ``id``) when it has one, so all the alerts of an incident make one PagerDuty
incident; otherwise the alert id. Either way a retried event never opens a second incident:
PagerDuty folds events with the same ``dedup_key`` into the open one. Severity: Emergency, Alert and
Critical -> critical, Error -> error, Warning -> warning, the rest -> info. ``url`` defaults to
PagerDuty's enqueue endpoint; ``options.routing_key`` (the integration key) is required.
PagerDuty answers 202; 400 (an invalid event) is not retried (dead letter); 429 and 5xx are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import orjson

from stockade.model.alert import Alert, priority_rank
from stockade.model.clock import SYSTEM, Clock
from stockade.model.timeutil import format_time_ns
from stockade.sinks.delivery import Outcome
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry
from stockade.sinks.lines import container_label, namespace_of
from stockade.sinks.options import SinkOptions, Text
from stockade.sinks.outbox import HttpOptions, HttpSink, alert_of, check_http_url, spool_dir_of

__all__ = [
    "EVENTS_URL",
    "PagerDutyOptions",
    "PagerDutySink",
    "dedup_key",
    "pagerduty_event",
    "pagerduty_severity",
]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def pagerduty_severity(priority: str) -> str:
    """PagerDuty's severity (critical, error, warning, info) of a Falco priority."""
    rank = priority_rank(priority)
    return "critical" if rank <= 2 else "error" if rank == 3 else "warning" if rank == 4 else "info"


def dedup_key(alert: Alert) -> str:
    """The incident id the alert carries (``extra["incident"]``), else the alert id."""
    inc = alert.extra.get("incident")
    if isinstance(inc, dict):
        inc = inc.get("id")
    return str(inc) if inc else alert.id


def pagerduty_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """The Events API v2 trigger event of one alert."""
    payload: dict[str, Any] = {
        "summary": f"[{alert.priority}] {alert.rule}: {alert.output}"[:1024],
        "source": alert.hostname or "stockade",
        "severity": pagerduty_severity(alert.priority),
        "timestamp": format_time_ns(alert.time_ns),
        "component": container_label(alert),
        "class": alert.rule,
        "custom_details": alert.to_falco_json(),
    }
    ns = namespace_of(alert)
    if ns:
        payload["group"] = ns
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "client": "Stockade",
        "payload": payload,
    }


class PagerDutyOptions(HttpOptions):
    """The ``options`` of a pagerduty sink."""

    #: the integration's routing key (required)
    routing_key: Text | None = None


class PagerDutySink(HttpSink):
    """Triggers a PagerDuty event per alert (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = PagerDutyOptions

    def __init__(
        self,
        spool_dir: str | Path,
        options: PagerDutyOptions,
        url: str = EVENTS_URL,
        name: str = "pagerduty",
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not options.routing_key:
            raise EntryError("options.routing_key", "a pagerduty sink needs a routing_key")
        self.routing_key = options.routing_key
        url = check_http_url("pagerduty", url)
        super().__init__(url, spool_dir, options, name=name, clock=clock, transport=transport)

    @classmethod
    def from_config(cls, entry: SinkEntry, options: PagerDutyOptions, context: SinkContext) -> PagerDutySink:
        """The sink of a ``type: pagerduty`` entry (``url``: default PagerDuty's endpoint)."""
        url = check_http_url("pagerduty", entry.url or EVENTS_URL)
        return cls(spool_dir_of(options, context), options, url, name=context.name, clock=context.clock)

    def send(self, recs: list[bytes]) -> Outcome:
        """Send one alert's event."""
        (rec,) = recs
        return self.post(orjson.dumps(pagerduty_event(alert_of(rec), self.routing_key)))[0]


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = PagerDutySink
