"""Shipping from an agent to its manager over HTTP, with a disk buffer.

Records (alerts, and the events kept as evidence) are collected per kind and sealed into batches
(``{"kind": ..., "items": [...]}``) every ``flush_s`` or every ``max_batch`` records; batches are
delivered by :class:`stockade.sinks.delivery.Delivery`, the loop the webhook sink uses, with the
same retry classifier (408, 429, 5xx and transport errors are retried, a ``Retry-After`` is
honoured; other answers reject the batch). A batch that fails goes at once to a disk spool, with
the queue behind it, and new batches queue behind the spool, so order is kept; the spool is sent,
oldest first, every ``retry_s`` until the manager answers, and survives restarts. Beyond its size
limit, records are dropped and counted, never silently.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

import httpx
import orjson

from stockade.model.clock import SYSTEM, Clock
from stockade.model.errorlog import ErrorLog
from stockade.sinks.delivery import Delivery, Outcome, RetryPolicy, post
from stockade.sinks.interface import SinkStats
from stockade.sinks.spool import Spool

__all__ = ["ENDPOINTS", "Shipper", "ShipperStats"]

#: kind -> API path on the manager
ENDPOINTS = {"alerts": "/api/v1/ingest/alerts", "events": "/api/v1/ingest/events?evaluate=false"}


@dataclass(slots=True)
class ShipperStats:
    """What the shipper did: records sent per kind, rejected and dropped; batches spooled."""

    sent: dict[str, int] = field(default_factory=lambda: {"alerts": 0, "events": 0})
    #: records lost (the spool was full or could not be written)
    dropped: int = 0
    #: attempts that failed and will be retried
    send_errors: int = 0
    #: records the manager refused (4xx)
    rejected: int = 0
    #: whether the last attempt got an HTTP answer (None: nothing sent yet)
    reachable: bool | None = None
    #: what became of batches (sent, failed, retried, spooled, dropped), counted by the delivery
    batches: SinkStats = field(default_factory=SinkStats)
    errors: ErrorLog = field(default_factory=lambda: ErrorLog("agent shipper"))

    @property
    def spooled_batches(self) -> int:
        """Batches written to the disk spool."""
        return self.batches.spooled

    @property
    def last_error(self) -> str | None:
        """The latest problem, if any."""
        recent = self.errors.errors
        return recent[-1] if recent else None

    def to_dict(self) -> dict[str, Any]:
        """The agent's status (``stockade agent``'s ``shipper`` section)."""
        return {
            "sent": dict(self.sent),
            "spooled_batches": self.spooled_batches,
            "dropped": self.dropped,
            "send_errors": self.send_errors,
            "rejected": self.rejected,
            "last_error": self.last_error,
            "manager_reachable": self.reachable,
        }


def _items_in(batches: Sequence[bytes]) -> int:
    n = 0
    for b in batches:
        try:
            n += len(orjson.loads(b)["items"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            n += 1  # a damaged batch: at least one record
    return n


class Shipper:
    """Sends records to the manager in batches, through a disk spool (see the module docstring)."""

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        *,
        token: str | None = None,
        max_batch: int = 1000,
        flush_s: float = 0.5,
        queue_batches: int = 64,
        max_spool_bytes: int = 1 << 30,
        timeout_s: float = 5.0,
        retry_s: float = 2.0,
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`retry_s`: the wait between attempts while the manager fails; `transport` replaces the
        network (tests: ``httpx.MockTransport``)."""
        self.url = url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
        )
        self._clock = clock
        self.stats = ShipperStats()
        self.max_batch = max_batch
        self.flush_s = flush_s
        self.retry_s = retry_s
        self._delivery = Delivery(
            self._send,
            Spool(spool_dir, max_bytes=max_spool_bytes, clock=clock),
            where=self.url,
            # a failed batch goes to disk at once; the spool is retried every retry_s
            policy=RetryPolicy(max_retries=0, backoff_initial_s=retry_s, backoff_max_s=retry_s),
            queue_size=queue_batches,
            stats=self.stats.batches,
            errors=self.stats.errors,
            unit="batch",
            on_rejected=self._rejected,
            on_dropped=self._dropped,
            clock=clock,
            thread_name="stockade-shipper",
            join_timeout_s=timeout_s + 1.0,
        )
        self._pending: dict[str, list[dict[str, Any]]] = {"alerts": [], "events": []}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._batcher = threading.Thread(
            target=self._seal_every_flush_s, name="stockade-shipper-batches", daemon=True
        )
        self._batcher.start()

    # -- producer side -----------------------------------------------------------------------------
    def submit(self, kind: str, records: list[dict[str, Any]]) -> None:
        """Add records of `kind` (alerts, events) to the next batch."""
        if kind not in ENDPOINTS:
            raise ValueError(f"unknown kind {kind!r}")
        with self._lock:
            buf = self._pending[kind]
            buf.extend(records)
            if len(buf) >= self.max_batch:
                self._seal(kind)

    def _seal(self, kind: str) -> None:
        """Turn the pending records of `kind` into a batch for delivery (caller holds the lock)."""
        items = self._pending[kind]
        if not items:
            return
        self._pending[kind] = []
        self._delivery.put(orjson.dumps({"kind": kind, "items": items}, default=str))

    def _seal_all(self) -> None:
        with self._lock:
            for kind in ENDPOINTS:
                self._seal(kind)

    def _seal_every_flush_s(self) -> None:
        while not self._stop.wait(self.flush_s):
            self._seal_all()

    # -- sender side -------------------------------------------------------------------------------
    def _send(self, batch: bytes) -> Outcome:
        """One attempt to deliver a batch; counts what the manager made of it."""
        try:
            doc = orjson.loads(batch)
            kind, items = doc["kind"], doc["items"]
            path = ENDPOINTS[kind]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return Outcome("rejected", "a damaged batch in the spool")
        outcome = post(self._client, path, orjson.dumps(items), self._clock)
        self.stats.reachable = outcome.reached
        match outcome.verdict:
            case "delivered":
                self.stats.sent[kind] += len(items)
            case "retry":
                self.stats.send_errors += 1
            case "rejected":
                self.stats.rejected += len(items)
            case _:
                assert_never(outcome.verdict)
        return outcome

    def _rejected(self, batch: bytes, outcome: Outcome) -> None:
        self.stats.errors.report(
            f"{self.url} refused a batch of {_items_in([batch])} record(s): {outcome.detail}"
        )

    def _dropped(self, batches: Sequence[bytes]) -> None:
        self.stats.dropped += _items_in(batches)

    # -- flush / close -----------------------------------------------------------------------------
    def flush(self, timeout_s: float = 5.0) -> None:
        """Send what is pending now (at most `timeout_s`; what cannot be sent goes to the spool)."""
        self._seal_all()
        self._delivery.drain(timeout_s, give_up_if_down=True)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is pending for at most `timeout_s`; what is left stays in the spool."""
        self._stop.set()
        self._batcher.join(timeout_s)
        self._seal_all()
        self._delivery.close(timeout_s)
        self._client.close()

    @property
    def backlog(self) -> int:
        """Batches waiting in the disk spool."""
        return self._delivery.backlog
