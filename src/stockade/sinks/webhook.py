"""HTTP webhook sink: POSTs each alert's Falco JSON to a URL (falcosidekick takes it unchanged).

Delivery, in order, one alert per request:

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

import collections
import email.utils
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from stockade.errors import SinkError
from stockade.model.alert import Alert
from stockade.model.timeutil import format_time_ns
from stockade.sinks.interface import SinkStats
from stockade.sinks.spool import ErrorLog, Spool

__all__ = ["WebhookSink"]

_OK, _RETRY, _FATAL = 0, 1, 2
DEAD_LETTER = "dead-letter.jsonl"


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - time.time())


class WebhookSink:
    """POSTs alerts to ``url`` with a queue, retries and a disk spool (see the module docstring)."""

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        headers: dict[str, str] | None = None,
        verify_tls: bool = True,
        timeout_s: float = 5.0,
        queue_size: int = 10_000,
        max_spool_bytes: int = 1 << 30,
        segment_bytes: int = 4 << 20,
        spool_fsync: str = "interval",
        max_retries: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 300.0,
        flush_timeout_s: float = 10.0,
        trust_env: bool = True,
        name: str = "webhook",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, not {url!r}")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.url = url
        self.queue_size = queue_size
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.flush_timeout_s = flush_timeout_s
        self.spool_dir = Path(spool_dir)
        try:
            self._spool = Spool(
                spool_dir, max_bytes=max_spool_bytes, segment_bytes=segment_bytes, fsync=spool_fsync
            )
        except OSError as e:
            raise SinkError(f"sink {name}: cannot open spool directory {spool_dir}: {e.strerror or e}") from e
        hdrs = {"User-Agent": "stockade", **(headers or {}), "Content-Type": "application/json"}
        self._client = httpx.Client(
            headers=hdrs, verify=verify_tls, timeout=timeout_s, follow_redirects=True, trust_env=trust_env
        )
        self._timeout_s = timeout_s
        self._cv = threading.Condition()
        self._q: collections.deque[bytes] = collections.deque()
        self._spilling = len(self._spool) > 0  # new alerts go behind the spool while it has any
        self._inflight: bytes | None = None
        self._inflight_from_spool = False
        self._down = False  # the last attempt failed with a retryable error
        self._stop = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"stockade-sink-{name}", daemon=True)
        self._thread.start()

    # ---- producer side ---------------------------------------------------------------

    def emit(self, alert: Alert) -> None:
        rec = orjson.dumps(alert.to_falco_json(), option=orjson.OPT_NON_STR_KEYS)
        with self._cv:
            if self._closed:
                self.stats.failed += 1
                self.errors.report("alert emitted after close: not delivered")
                return
            if self._spilling or len(self._q) >= self.queue_size:
                self._spill([rec], front=False)
            else:
                self._q.append(rec)
            self._cv.notify_all()

    def _spill(self, recs: list[bytes], front: bool) -> None:
        """Put records in the spool (caller holds the lock); count and report what does not fit."""
        try:
            n = self._spool.prepend(recs) if front else self._spool.append(recs)
        except OSError as e:
            self.stats.dropped += len(recs)
            self.errors.report(
                f"cannot write spool {self.spool_dir}: {e.strerror or e}; {len(recs)} alert(s) dropped"
            )
            return
        self.stats.spooled += n
        if n:
            self._spilling = True
        if n < len(recs):
            self.stats.dropped += len(recs) - n
            self.errors.report(
                f"spool {self.spool_dir} is full (max_spool_bytes={self._spool.max_bytes}): "
                f"{len(recs) - n} alert(s) dropped"
            )

    # ---- delivery --------------------------------------------------------------------

    def _post(self, rec: bytes) -> tuple[int, float | None, str]:
        """One attempt: (_OK | _RETRY | _FATAL, retry-after seconds, problem)."""
        try:
            r = self._client.post(self.url, content=rec)
        except httpx.HTTPError as e:
            return _RETRY, None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if 200 <= r.status_code < 300:
            return _OK, None, ""
        detail = f"HTTP {r.status_code}: {r.text[:300]}"
        if r.status_code in (408, 429) or r.status_code >= 500:
            ra = _retry_after_s(r.headers.get("Retry-After"))
            return _RETRY, (min(ra, self.max_retry_after_s) if ra is not None else None), detail
        return _FATAL, None, detail

    def _backoff(self, attempt: int) -> float:
        d = min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(attempt - 1, 30)))
        return d / 2 + random.uniform(0, d / 2)

    def _dead_letter(self, rec: bytes, detail: str) -> None:
        entry = {
            "time": format_time_ns(time.time_ns()),
            "url": self.url,
            "error": detail,
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

    def _next(self) -> bytes | None:
        """Wait for the next record to send (lock held); None when stopping."""
        while not self._stop:
            if self._q:
                self._inflight, self._inflight_from_spool = self._q.popleft(), False
                return self._inflight
            if self._spilling:
                try:
                    rec = self._spool.peek()
                except OSError as e:
                    self.errors.report(f"cannot read spool {self.spool_dir}: {e.strerror or e}")
                    self._cv.wait(1.0)
                    continue
                if rec is not None:
                    self._inflight, self._inflight_from_spool = rec, True
                    return rec
                self._spilling = False
                continue
            self._cv.notify_all()  # idle: wake flush()/close()
            self._cv.wait(self._spool.fsync_interval_s)
            try:
                self._spool.sync()
            except OSError as e:
                self.errors.report(f"cannot fsync spool {self.spool_dir}: {e.strerror or e}")
        return None

    def _run(self) -> None:
        while True:
            with self._cv:
                rec = self._next()
                from_spool = self._inflight_from_spool
            if rec is None:
                return
            attempt = 0
            while True:
                result, wait_hint, detail = self._post(rec)
                with self._cv:
                    if self._closed:
                        return  # close() gave up waiting and persisted the in-flight alert
                    if result != _RETRY:
                        if from_spool:
                            try:
                                self._spool.advance()
                            except OSError as e:
                                self.errors.report(f"cannot update spool cursor: {e.strerror or e}")
                        if result == _OK:
                            self.stats.sent += 1
                        else:
                            self.stats.failed += 1
                            self.errors.report(
                                f"{self.url} refused an alert ({detail}); kept in {DEAD_LETTER}"
                            )
                            self._dead_letter(rec, detail)
                        self._down = False
                        self._inflight = None
                        self._cv.notify_all()
                        break
                    self._down = True
                    attempt += 1
                    self.errors.report(f"cannot deliver to {self.url}: {detail}")
                    if not from_spool and attempt > self.max_retries:
                        # receiver down: this alert and the queue (older than the spool) go to disk
                        recs = [rec, *self._q]
                        self._q.clear()
                        self._inflight = None
                        self._spill(recs, front=True)
                        self._cv.notify_all()
                        break
                    self.stats.retried += 1
                    self._cv.notify_all()
                    delay = wait_hint if wait_hint is not None else self._backoff(attempt)
                    until = time.monotonic() + delay
                    while not self._stop and (left := until - time.monotonic()) > 0:
                        self._cv.wait(left)  # new alerts notify too: wait out the whole delay
                    if self._stop:
                        return  # close() persists the in-flight alert

    # ---- flush / close ---------------------------------------------------------------

    def _drained(self) -> bool:
        return not self._q and not self._spilling and self._inflight is None

    def pending(self) -> int:
        """Alerts not yet delivered (queued, in flight and spooled)."""
        with self._cv:
            inflight = 1 if self._inflight is not None and not self._inflight_from_spool else 0
            return len(self._q) + inflight + len(self._spool)

    def flush(self) -> None:
        """Wait (at most ``flush_timeout_s``, not at all while the receiver fails) for everything to
        be delivered; fsync the spool. What is not delivered stays queued or spooled."""
        self.drain(give_up_if_down=True)

    def drain(self, timeout_s: float | None = None, give_up_if_down: bool = False) -> bool:
        """Wait until everything is delivered or the timeout passes; True if all was delivered."""
        deadline = time.monotonic() + (self.flush_timeout_s if timeout_s is None else timeout_s)
        with self._cv:
            while not self._drained() and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0 or (give_up_if_down and self._down):
                    break
                self._cv.wait(min(left, 0.1))
            try:
                self._spool.sync()
            except OSError as e:
                self.errors.report(f"cannot fsync spool {self.spool_dir}: {e.strerror or e}")
            return self._drained()

    def close(self) -> None:
        """Deliver for at most ``flush_timeout_s``, then keep whatever is left in the spool."""
        with self._cv:
            if self._closed:
                return
            deadline = time.monotonic() + self.flush_timeout_s
            while not self._drained() and not self._down:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.1))
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=self._timeout_s + 1.0)
        with self._cv:
            recs = list(self._q)
            if self._inflight is not None and not self._inflight_from_spool:
                recs.insert(0, self._inflight)
            self._q.clear()
            self._inflight = None
            if recs:
                self._spill(recs, front=True)
            self._closed = True
            try:
                self._spool.close()
            except OSError as e:
                self.errors.report(f"cannot close spool {self.spool_dir}: {e.strerror or e}")
        self._client.close()

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
