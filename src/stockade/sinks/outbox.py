"""The delivery every network sink shares: a :class:`~stockade.sinks.delivery.Delivery` over a disk
:class:`~stockade.sinks.spool.Spool`, its options, and the dead-letter file.

A sink that sends alerts over the network (webhook, splunk_hec, elasticsearch, slack, teams,
pagerduty, email, syslog over TCP) owns an :class:`Outbox`: ``emit`` puts one record (the alert's
JSON, one line) in it and never waits; a background thread hands records, in order, one or
``batch_max`` at a time, to the sink's ``send`` function, which turns them into the destination's
request and says what became of it (an :class:`~stockade.sinks.delivery.Outcome`). Retries,
backoff, ``Retry-After``, the spool (nothing lost while the destination is down, in order, across
restarts) and the counting are the Delivery's; a record the destination refuses for good is
appended to ``dead-letter.jsonl`` in the spool directory. The spool cursor moves past a record only
after the destination accepted it, so a record is sent twice only if the destination took it and
the answer was lost (or the process died before the cursor was saved).

:class:`SpoolOptions` are the options of that machinery, :class:`HttpOptions` adds the HTTP client's;
each sink's ``Options`` model extends one of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from pydantic import field_validator

from stockade.errors import SinkError
from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.model.timeutil import format_time_ns
from stockade.sinks.delivery import Delivery, Outcome, RetryPolicy, request
from stockade.sinks.interface import EntryError, SinkContext, SinkStats
from stockade.sinks.options import Bool, Count, Duration, Fsync, Headers, SinkOptions, Size, Text
from stockade.sinks.spool import ErrorLog, Spool

__all__ = [
    "DEAD_LETTER",
    "HttpOptions",
    "HttpSink",
    "Outbox",
    "OutboxSink",
    "SpoolOptions",
    "alert_of",
    "check_http_url",
    "http_client",
    "spool_dir_of",
]

DEAD_LETTER = "dead-letter.jsonl"


class SpoolOptions(SinkOptions):
    """Options of every sink that delivers through the spool (docs/sinks.md, "Delivery")."""

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

    @field_validator("queue_size")
    @classmethod
    def _at_least_one(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"expected at least 1, not {v}")
        return v


class HttpOptions(SpoolOptions):
    """Options of every HTTP sink: :class:`SpoolOptions` plus the HTTP client's."""

    headers: Headers = {}
    verify_tls: Bool = True
    #: honour HTTP(S)_PROXY / NO_PROXY
    trust_env: Bool = True


def spool_dir_of(options: SpoolOptions, context: SinkContext) -> Path:
    """``options.spool_dir``, else <data_dir>/spool/<sink name>."""
    return Path(options.spool_dir) if options.spool_dir else context.data_dir / "spool" / context.name


def http_client(
    options: HttpOptions,
    headers: dict[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The HTTP client of a sink: its options' headers (then `headers`), TLS, timeout, proxies."""
    hdrs = {
        "User-Agent": "stockade",
        **options.headers,
        "Content-Type": "application/json",
        **(headers or {}),
    }
    return httpx.Client(
        headers=hdrs,
        verify=options.verify_tls,
        timeout=options.timeout_s,
        follow_redirects=True,
        trust_env=options.trust_env,
        transport=transport,
    )


def alert_of(record: bytes) -> Alert:
    """The alert a spooled record (its Falco JSON) holds."""
    return Alert.from_falco_json(orjson.loads(record))


class Outbox:
    """A sink's queue, spool, retries and dead letters (see the module docstring).

    `send` gets a list of records (at most `batch_max`, in order) and returns their outcome; it is
    called on the outbox's thread, never concurrently. Raises :class:`SinkError` if the spool
    directory cannot be opened.
    """

    def __init__(
        self,
        send: Callable[[list[bytes]], Outcome],
        spool_dir: str | Path,
        *,
        name: str,
        where: str,
        options: SpoolOptions,
        stats: SinkStats,
        errors: ErrorLog,
        clock: Clock = SYSTEM,
        batch_max: int = 1,
    ) -> None:
        self.where = where
        self.spool_dir = Path(spool_dir)
        self.flush_timeout_s = options.flush_timeout_s
        self.errors = errors
        self._clock = clock
        try:
            spool = Spool(
                spool_dir,
                max_bytes=options.max_spool_bytes,
                segment_bytes=options.segment_bytes,
                fsync=options.spool_fsync,
                clock=clock,
            )
        except OSError as e:
            raise SinkError(f"sink {name}: cannot open spool directory {spool_dir}: {e.strerror or e}") from e
        policy = RetryPolicy(
            max_retries=options.max_retries,
            backoff_initial_s=options.backoff_initial_s,
            backoff_max_s=options.backoff_max_s,
            max_retry_after_s=options.max_retry_after_s,
        )
        self.delivery = Delivery(
            None,
            spool,
            send_batch=send,
            batch_max=max(1, batch_max),
            where=where,
            policy=policy,
            queue_size=options.queue_size,
            stats=stats,
            errors=errors,
            unit="alert",
            on_rejected=self._dead_letter,
            clock=clock,
            thread_name=f"stockade-sink-{name}",
            join_timeout_s=options.timeout_s + 1.0,
        )

    def _dead_letter(self, rec: bytes, outcome: Outcome) -> None:
        """Keep an alert the receiver refused in dead-letter.jsonl (with the time and the answer)."""
        self.errors.report(f"{self.where} refused an alert ({outcome.detail}); kept in {DEAD_LETTER}")
        entry = {
            "time": format_time_ns(int(self._clock.time() * 1e9)),
            "url": self.where,
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

    def put(self, record: bytes) -> None:
        """Queue one record (never waits for the network)."""
        self.delivery.put(record)

    def pending(self) -> int:
        """Records not yet delivered (queued, in flight and spooled)."""
        return self.delivery.pending()

    def flush(self) -> None:
        """Wait (at most ``flush_timeout_s``, not at all while the receiver fails) for everything to
        be delivered; fsync the spool."""
        self.delivery.drain(self.flush_timeout_s, give_up_if_down=True)

    def drain(self, timeout_s: float | None = None, give_up_if_down: bool = False) -> bool:
        """Wait until everything is delivered or the timeout passes; True if all was delivered."""
        return self.delivery.drain(
            self.flush_timeout_s if timeout_s is None else timeout_s, give_up_if_down=give_up_if_down
        )

    def close(self) -> None:
        """Deliver for at most ``flush_timeout_s``, then keep whatever is left in the spool."""
        self.delivery.close(self.flush_timeout_s)


class OutboxSink:
    """The Sink methods of a sink that delivers through an :class:`Outbox` (``self.outbox``).

    A subclass sets ``name``, ``stats``, ``errors`` and ``outbox`` and implements :meth:`record`;
    :meth:`release` frees what the sink holds besides the outbox (an HTTP client).
    """

    name: str
    stats: SinkStats
    errors: ErrorLog
    outbox: Outbox

    def record(self, alert: Alert) -> bytes:
        """The spooled form of an alert (default: its Falco JSON)."""
        return orjson.dumps(alert.to_falco_json(), option=orjson.OPT_NON_STR_KEYS)

    def release(self) -> None:
        """Free what the sink holds besides the outbox."""

    def emit(self, alert: Alert) -> None:
        """Queue the alert for delivery (never waits for the network)."""
        self.outbox.put(self.record(alert))

    def pending(self) -> int:
        """Alerts not yet delivered (queued, in flight and spooled)."""
        return self.outbox.pending()

    def flush(self) -> None:
        """Wait (bounded) for the queued alerts to be delivered; fsync the spool."""
        self.outbox.flush()

    def drain(self, timeout_s: float | None = None, give_up_if_down: bool = False) -> bool:
        """Wait until everything is delivered or the timeout passes; True if all was delivered."""
        return self.outbox.drain(timeout_s, give_up_if_down)

    def close(self) -> None:
        """Deliver for at most ``flush_timeout_s``, then keep whatever is left in the spool."""
        self.outbox.close()
        self.release()


def check_http_url(kind: str, url: str | None) -> str:
    """`url` if it is an http(s) URL; else an :class:`EntryError` on ``url`` naming the sink type."""
    if not url:
        raise EntryError("url", f"a {kind} sink needs a url")
    if not url.startswith(("http://", "https://")):
        raise EntryError("url", f"{kind} url must start with http:// or https://, not {url!r}")
    return url


class HttpSink(OutboxSink):
    """A sink that POSTs to ``url`` through an :class:`Outbox`: a subclass implements :meth:`send`
    (records -> outcome, with ``self.client``) and, if it does not spool Falco JSON, :meth:`record`."""

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        options: HttpOptions,
        *,
        name: str,
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
        batch_max: int = 1,
    ) -> None:
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.url = url
        self.spool_dir = Path(spool_dir)
        self.queue_size = options.queue_size
        self.flush_timeout_s = options.flush_timeout_s
        self.clock = clock
        self.client = http_client(options, headers, transport)
        try:
            self.outbox = Outbox(
                self.send,
                spool_dir,
                name=name,
                where=url,
                options=options,
                stats=self.stats,
                errors=self.errors,
                clock=clock,
                batch_max=batch_max,
            )
        except BaseException:
            self.client.close()
            raise

    def send(self, recs: list[bytes]) -> Outcome:
        """Deliver `recs` (called on the outbox's thread)."""
        raise NotImplementedError

    def post(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[Outcome, httpx.Response | None]:
        """POST `body` to ``url`` once: the outcome and the answer."""
        return request(self.client, self.url, body, headers, self.clock)

    def release(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def __enter__(self) -> HttpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
