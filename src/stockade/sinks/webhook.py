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
receiver got it but the spool cursor was not yet saved).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import httpx
import orjson
from pydantic import field_validator

from stockade.errors import SinkError
from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.model.timeutil import format_time_ns
from stockade.sinks.delivery import Delivery, Outcome, RetryPolicy, post
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry, SinkStats
from stockade.sinks.options import Bool, Count, Duration, Fsync, Headers, SinkOptions, Size, Text
from stockade.sinks.spool import ErrorLog, Spool

__all__ = ["DEAD_LETTER", "WebhookOptions", "WebhookSink"]

DEAD_LETTER = "dead-letter.jsonl"


def _check_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook url must start with http:// or https://, not {url!r}")


class WebhookOptions(SinkOptions):
    """The ``options`` of a webhook sink."""

    headers: Headers = {}
    verify_tls: Bool = True
    timeout_s: Duration = 5.0
    #: alerts held in memory
    queue_size: Count = 10_000
    #: default: <data_dir>/spool/<sink name>
    spool_dir: Text | None = None
    max_spool_bytes: Size = 1 << 30
    segment_bytes: Size = 4 << 20
    spool_fsync: Fsync = "interval"
    #: per alert, before it (and the queue) spill to disk
    max_retries: Count = 5
    backoff_initial_s: Duration = 0.5
    backoff_max_s: Duration = 30.0
    #: cap on a receiver's Retry-After
    max_retry_after_s: Duration = 300.0
    #: how long close() goes on delivering
    flush_timeout_s: Duration = 10.0
    #: honour HTTP(S)_PROXY / NO_PROXY
    trust_env: Bool = True

    @field_validator("queue_size")
    @classmethod
    def _at_least_one(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"expected at least 1, not {v}")
        return v


class WebhookSink:
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
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.url = url
        self.spool_dir = Path(spool_dir)
        self.queue_size = opts.queue_size
        self.flush_timeout_s = opts.flush_timeout_s
        self._clock = clock
        hdrs = {"User-Agent": "stockade", **opts.headers, "Content-Type": "application/json"}
        self._client = httpx.Client(
            headers=hdrs,
            verify=opts.verify_tls,
            timeout=opts.timeout_s,
            follow_redirects=True,
            trust_env=opts.trust_env,
            transport=transport,
        )
        try:
            spool = Spool(
                spool_dir,
                max_bytes=opts.max_spool_bytes,
                segment_bytes=opts.segment_bytes,
                fsync=opts.spool_fsync,
                clock=clock,
            )
        except OSError as e:
            self._client.close()
            raise SinkError(f"sink {name}: cannot open spool directory {spool_dir}: {e.strerror or e}") from e
        policy = RetryPolicy(
            max_retries=opts.max_retries,
            backoff_initial_s=opts.backoff_initial_s,
            backoff_max_s=opts.backoff_max_s,
            max_retry_after_s=opts.max_retry_after_s,
        )
        self._delivery = Delivery(
            self._post,
            spool,
            where=url,
            policy=policy,
            queue_size=opts.queue_size,
            stats=self.stats,
            errors=self.errors,
            unit="alert",
            on_rejected=self._dead_letter,
            clock=clock,
            thread_name=f"stockade-sink-{name}",
            join_timeout_s=opts.timeout_s + 1.0,
        )

    @classmethod
    def from_config(cls, entry: SinkEntry, options: WebhookOptions, context: SinkContext) -> WebhookSink:
        """The sink of a ``type: webhook`` entry (its ``url`` is required)."""
        if not entry.url:
            raise EntryError("url", "a webhook sink needs a url")
        try:
            _check_url(entry.url)
        except ValueError as e:
            raise EntryError("url", str(e)) from None
        spool_dir = options.spool_dir or context.data_dir / "spool" / context.name
        return cls(entry.url, spool_dir, name=context.name, options=options, clock=context.clock)

    # ---- delivery --------------------------------------------------------------------

    def _post(self, rec: bytes) -> Outcome:
        return post(self._client, self.url, rec, self._clock)

    def _dead_letter(self, rec: bytes, outcome: Outcome) -> None:
        """Keep an alert the receiver refused in dead-letter.jsonl (with the time and the answer)."""
        self.errors.report(f"{self.url} refused an alert ({outcome.detail}); kept in {DEAD_LETTER}")
        entry = {
            "time": format_time_ns(int(self._clock.time() * 1e9)),
            "url": self.url,
            "error": outcome.detail,
            "alert": orjson.Fragment(rec),
        }
        path = self.spool_dir / DEAD_LETTER
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self.errors.report(f"cannot write dead letter file {path}: {e.strerror or e}")

    # ---- Sink ------------------------------------------------------------------------

    def emit(self, alert: Alert) -> None:
        """Queue the alert's Falco JSON for delivery (never waits for the network)."""
        self._delivery.put(orjson.dumps(alert.to_falco_json(), option=orjson.OPT_NON_STR_KEYS))

    def pending(self) -> int:
        """Alerts not yet delivered (queued, in flight and spooled)."""
        return self._delivery.pending()

    def flush(self) -> None:
        """Wait (at most ``flush_timeout_s``, not at all while the receiver fails) for everything to
        be delivered; fsync the spool. What is not delivered stays queued or spooled."""
        self._delivery.drain(self.flush_timeout_s, give_up_if_down=True)

    def drain(self, timeout_s: float | None = None, give_up_if_down: bool = False) -> bool:
        """Wait until everything is delivered or the timeout passes; True if all was delivered."""
        return self._delivery.drain(
            self.flush_timeout_s if timeout_s is None else timeout_s, give_up_if_down=give_up_if_down
        )

    def close(self) -> None:
        """Deliver for at most ``flush_timeout_s``, then keep whatever is left in the spool."""
        self._delivery.close(self.flush_timeout_s)
        self._client.close()

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = WebhookSink
