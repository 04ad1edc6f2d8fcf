"""Shipping from an agent to its manager over HTTP, with a disk buffer.

Records (alerts, and the events kept as evidence) are queued in memory and sent in batches by a
background thread. When the manager cannot be reached (or answers 5xx/429), batches go to a disk
spool and are sent, oldest first, once it answers again; new batches queue behind the spool (order
is kept unless the in-memory queue itself overflows, when the overflow goes to the spool at once). The spool survives restarts. Beyond its size limit, records are dropped and counted, never
silently.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from stockade.sinks.spool import Spool

#: kind -> API path on the manager
ENDPOINTS = {"alerts": "/api/v1/ingest/alerts", "events": "/api/v1/ingest/events?evaluate=false"}


@dataclass(slots=True)
class ShipperStats:
    sent: dict[str, int] = field(default_factory=lambda: {"alerts": 0, "events": 0})
    spooled_batches: int = 0
    dropped: int = 0
    send_errors: int = 0
    rejected: int = 0
    last_error: str | None = None
    reachable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "spooled_batches": self.spooled_batches,
            "dropped": self.dropped,
            "send_errors": self.send_errors,
            "rejected": self.rejected,
            "last_error": self.last_error,
            "manager_reachable": self.reachable,
        }


class Shipper:
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
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.spool = Spool(spool_dir, max_bytes=max_spool_bytes)
        self.stats = ShipperStats()
        self.max_batch = max_batch
        self.flush_s = flush_s
        self.retry_s = retry_s
        self._pending: dict[str, list[dict[str, Any]]] = {"alerts": [], "events": []}
        self._q: queue.Queue[bytes] = queue.Queue(maxsize=queue_batches)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stockade-shipper", daemon=True)
        self._thread.start()

    # -- producer side -----------------------------------------------------------------------------
    def submit(self, kind: str, records: list[dict[str, Any]]) -> None:
        if kind not in ENDPOINTS:
            raise ValueError(f"unknown kind {kind!r}")
        with self._lock:
            buf = self._pending[kind]
            buf.extend(records)
            if len(buf) >= self.max_batch:
                self._seal(kind)

    def _seal(self, kind: str) -> None:
        """Turn the pending records of `kind` into a batch (caller holds the lock)."""
        items = self._pending[kind]
        if not items:
            return
        self._pending[kind] = []
        batch = orjson.dumps({"kind": kind, "items": items}, default=str)
        try:
            self._q.put_nowait(batch)
        except queue.Full:
            self._to_spool([batch], len(items))
        self._wake.set()

    def _to_spool(self, batches: list[bytes], nrecords: int) -> None:
        try:
            kept = self.spool.append(batches)
        except OSError as e:
            kept = 0
            self.stats.last_error = f"spool: {e}"
        self.stats.spooled_batches += kept
        if kept < len(batches):
            self.stats.dropped += nrecords if kept == 0 else _records_in(batches[kept:])

    # -- sender side -------------------------------------------------------------------------------
    def _send(self, batch: bytes) -> bool:
        """True if delivered (or rejected for good); False to retry later."""
        doc = orjson.loads(batch)
        kind, items = doc["kind"], doc["items"]
        try:
            r = self._client.post(ENDPOINTS[kind], content=orjson.dumps(items))
        except httpx.HTTPError as e:
            self.stats.send_errors += 1
            self.stats.last_error = f"{self.url}: {type(e).__name__}: {e}"
            self.stats.reachable = False
            return False
        self.stats.reachable = True
        if r.status_code >= 500 or r.status_code in (408, 429):
            self.stats.send_errors += 1
            self.stats.last_error = f"{self.url}: HTTP {r.status_code}"
            return False
        if r.status_code >= 400:
            self.stats.rejected += len(items)
            self.stats.last_error = f"{self.url}: HTTP {r.status_code}: {r.text[:200]}"
            return True
        self.stats.sent[kind] += len(items)
        return True

    def _drain_spool(self) -> bool:
        """Send spooled batches in order; False if the manager is still failing."""
        with self._lock:
            while True:
                rec = self.spool.peek()
                if rec is None:
                    return True
                if not self._send(rec):
                    return False
                self.spool.advance()

    def _run(self) -> None:
        retry_at = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            with self._lock:
                for kind in ENDPOINTS:
                    self._seal(kind)
            if not self._pump(time.monotonic() >= retry_at):
                retry_at = time.monotonic() + self.retry_s  # the manager failed: wait before trying again

    def _pump(self, try_send: bool) -> bool:
        """Send the spool, then the queue (to the spool if sending fails); False if a send failed."""
        ok = try_send and self._drain_spool()
        failed = try_send and not ok
        while True:
            try:
                batch = self._q.get_nowait()
            except queue.Empty:
                return not failed
            if ok and self._send(batch):
                continue
            if ok:
                failed = True
            ok = False
            with self._lock:
                self._to_spool([batch], _records_in([batch]))

    def flush(self, timeout_s: float = 5.0) -> None:
        """Send what is pending now (what cannot be sent goes to the spool)."""
        with self._lock:
            for kind in ENDPOINTS:
                self._seal(kind)
        deadline = time.monotonic() + timeout_s
        while not self._q.empty() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)

    def close(self, timeout_s: float = 5.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        with self._lock:
            rest: list[bytes] = []
            while True:
                try:
                    rest.append(self._q.get_nowait())
                except queue.Empty:
                    break
            if rest:
                self._to_spool(rest, _records_in(rest))
            self.spool.close()
        self._client.close()

    @property
    def backlog(self) -> int:
        """Batches waiting in the disk spool."""
        return len(self.spool)


def _records_in(batches: list[bytes]) -> int:
    return sum(len(orjson.loads(b)["items"]) for b in batches)
