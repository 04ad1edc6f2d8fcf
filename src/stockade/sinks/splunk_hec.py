"""Splunk HTTP Event Collector sink: alerts POSTed to ``/services/collector/event``.

Each request carries up to ``batch_max`` events (HEC takes several JSON event objects, one after
the other, in one body), with ``Authorization: Splunk TOKEN``. Each event is::

    {"time": 1732299200.123456, "host": "node-1", "source": "stockade", "sourcetype": "falco",
     "index": "security", "event": {<the alert's Falco JSON, or OCSF>}}

``url`` is the collector's base URL (``https://splunk:8088``) or the full endpoint. Delivery is
the shared outbox (:mod:`stockade.sinks.outbox`): retries on 5xx/429/connection errors, the disk
spool, the dead letter for a 4xx.

Idempotency: HEC does not deduplicate events: an event sent twice is indexed twice (indexer
acknowledgement only tells whether a batch was indexed, it does not drop repeats). The spool cursor
advances only after HEC answered 200, so a repeat happens only if HEC accepted a batch and the answer
was lost; every event carries the alert id (``stockade.id`` or ``finding_info.uid``), so a search can
drop such repeats (``| dedup stockade.id``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import httpx
import orjson

from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.delivery import Outcome
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry
from stockade.sinks.lines import alert_document
from stockade.sinks.options import Bool, Count, SinkOptions, Text
from stockade.sinks.outbox import HttpOptions, HttpSink, check_http_url, spool_dir_of

__all__ = ["SplunkHecOptions", "SplunkHecSink", "hec_url"]

ENDPOINT = "/services/collector/event"


def hec_url(url: str) -> str:
    """The event endpoint of a HEC base URL (unchanged if it already names a collector path)."""
    return url if "/services/collector" in url else url.rstrip("/") + ENDPOINT


class SplunkHecOptions(HttpOptions):
    """The ``options`` of a splunk_hec sink."""

    #: the HEC token (required)
    token: Text | None = None
    #: default: the token's default index
    index: Text | None = None
    sourcetype: Text = "falco"
    source: Text = "stockade"
    #: events per request
    batch_max: Count = 50
    #: JSON as OCSF Detection Findings instead of Falco's alert JSON
    ocsf: Bool = False


class SplunkHecSink(HttpSink):
    """Sends alerts to a Splunk HTTP Event Collector (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = SplunkHecOptions

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        options: SplunkHecOptions,
        name: str = "splunk_hec",
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not options.token:
            raise EntryError("options.token", "a splunk_hec sink needs a token")
        self.options = options
        super().__init__(
            hec_url(check_http_url("splunk_hec", url)),
            spool_dir,
            options,
            name=name,
            clock=clock,
            transport=transport,
            headers={"Authorization": f"Splunk {options.token}"},
            batch_max=options.batch_max,
        )

    @classmethod
    def from_config(cls, entry: SinkEntry, options: SplunkHecOptions, context: SinkContext) -> SplunkHecSink:
        """The sink of a ``type: splunk_hec`` entry (``url`` and ``options.token`` required)."""
        url = check_http_url("splunk_hec", entry.url)
        return cls(url, spool_dir_of(options, context), options, name=context.name, clock=context.clock)

    def record(self, alert: Alert) -> bytes:
        """The HEC event of the alert."""
        o = self.options
        event: dict[str, object] = {
            "time": round(alert.time_ns / 1e9, 6),
            "host": alert.hostname,
            "source": o.source,
            "sourcetype": o.sourcetype,
            "event": alert_document(alert, o.ocsf),
        }
        if o.index:
            event["index"] = o.index
        return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)

    def send(self, recs: list[bytes]) -> Outcome:
        """POST a batch of events."""
        return self.post(b"\n".join(recs))[0]


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = SplunkHecSink
