"""HTTP webhook sink: POSTs each alert's Falco JSON to a URL (falcosidekick takes it unchanged).

Delivery is :class:`stockade.sinks.delivery.Delivery`, in order, one alert per request:

* ``emit`` serialises the alert and puts it on a bounded in-memory queue drained by a background
  thread; it never waits for the network.
* Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff (with jitter,
  capped at ``backoff_max_s``; a ``Retry-After`` header is honoured). Other 4xx (and 3xx that are
  not followed) are not retried: the alert is counted in ``stats.failed`` and appended to
  ``dead-letter.jsonl`` in the spool directory with the status and the response.
* When the queue is full, or an alert is still undelivered after ``max_retries`` retries (the
  receiver is down), alerts spill to the disk spool (:class:`stockade.sinks.spool.Spool`). While
  the spool is not empty every new alert goes behind it, so the order is kept; the worker keeps
  retrying the oldest one and replays the spool once the receiver answers.
* Beyond ``max_spool_bytes`` alerts are dropped: counted in ``stats.dropped`` and reported.
* ``close()`` delivers for at most ``flush_timeout_s`` (not at all if the receiver is failing);
  what is left goes to the spool and is sent after the next start.

Within one run each alert is delivered once; across a crash an alert may be sent twice (the
receiver got it but the spool cursor was not yet saved). Every request carries an
``Idempotency-Key`` header, the alert id, so a receiver can drop such a repeat.
``options.ocsf: true`` posts OCSF Detection Findings instead of Falco's JSON.
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
from stockade.sinks.lines import alert_json
from stockade.sinks.ocsf import document_id
from stockade.sinks.options import Bool, SinkOptions
from stockade.sinks.outbox import DEAD_LETTER, HttpOptions, HttpSink, spool_dir_of

__all__ = ["DEAD_LETTER", "WebhookOptions", "WebhookSink"]


def _check_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook url must start with http:// or https://, not {url!r}")


class WebhookOptions(HttpOptions):
    """The ``options`` of a webhook sink."""

    #: JSON as OCSF Detection Findings instead of Falco's alert JSON
    ocsf: Bool = False


class WebhookSink(HttpSink):
    """POSTs alerts to ``url`` with a queue, retries and a disk spool (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = WebhookOptions

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        name: str = "webhook",
        options: WebhookOptions | None = None,
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`spool_dir` is where undelivered alerts wait (``options.spool_dir`` is read by
        :meth:`from_config`); `transport` replaces the network (tests: ``httpx.MockTransport``)."""
        _check_url(url)
        opts = options or WebhookOptions()
        self.ocsf = opts.ocsf
        super().__init__(url, spool_dir, opts, name=name, clock=clock, transport=transport)

    @classmethod
    def from_config(cls, entry: SinkEntry, options: WebhookOptions, context: SinkContext) -> WebhookSink:
        """The sink of a ``type: webhook`` entry (its ``url`` is required)."""
        if not entry.url:
            raise EntryError("url", "a webhook sink needs a url")
        try:
            _check_url(entry.url)
        except ValueError as e:
            raise EntryError("url", str(e)) from None
        return cls(
            entry.url, spool_dir_of(options, context), name=context.name, options=options, clock=context.clock
        )

    def record(self, alert: Alert) -> bytes:
        """The JSON posted for the alert (Falco's or OCSF)."""
        return alert_json(alert, self.ocsf)

    def send(self, recs: list[bytes]) -> Outcome:
        """POST one alert, with its id as the Idempotency-Key."""
        (rec,) = recs
        key = document_id(orjson.loads(rec))
        return self.post(rec, {"Idempotency-Key": key} if key else None)[0]


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = WebhookSink
