"""Reliable HTTP delivery: one retry classifier and one spool-backed delivery loop.

Both the webhook sink (:mod:`stockade.sinks.webhook`) and the agent's shipper
(:mod:`stockade.runtime.shipper`) deliver through this module, so they agree on what is worth
retrying and on how records wait:

* :func:`classify` maps an HTTP answer to an :class:`Outcome`: 2xx is ``delivered``; 408, 429 and
  5xx are ``retry`` (with the ``Retry-After`` header, seconds or an HTTP date, when given); any
  other status (4xx, a 3xx that was not followed) is ``rejected``: the receiver will never take
  this record. :func:`post` makes one attempt: a transport error (connection refused, timeout,
  TLS, ...) is ``retry`` with ``reached=False``.
* :class:`RetryPolicy`: exponential backoff with jitter (``backoff_initial_s`` doubling up to
  ``backoff_max_s``), a receiver's ``Retry-After`` honoured up to ``max_retry_after_s``, and
  ``max_retries`` attempts on a record from memory before it spills to disk.
* :class:`Delivery`: records (bytes, one JSON document each) go, in order, one at a time (or, with
  ``send_batch``, up to ``batch_max`` at a time), from a bounded in-memory queue and a disk
  :class:`~stockade.sinks.spool.Spool` to a ``send`` function, on a background thread. When the queue is full, or a record still fails after
  ``max_retries`` retries, records spill to the spool; while it holds any, new records go behind
  it, so the order is kept; its head is retried (with backoff) until the receiver answers. What
  does not fit in the spool is dropped, counted and reported. ``close()`` delivers for a bounded
  time and leaves the rest in the spool, which the next start sends first.

Time comes from an injectable :class:`~stockade.model.clock.Clock` (backoff, ``Retry-After``
dates), so tests use :class:`~stockade.model.clock.FakeClock` instead of sleeping. Waits for the
worker thread itself (:meth:`Delivery.drain`, :meth:`Delivery.close`) are bounded in real time: a
fake clock does not make a real thread go faster.
"""

from __future__ import annotations

import collections
import email.utils
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, assert_never

import httpx

from stockade.model.clock import SYSTEM, Clock
from stockade.model.errorlog import ErrorLog
from stockade.sinks.interface import SinkStats
from stockade.sinks.spool import Spool

__all__ = [
    "Delivery",
    "Outcome",
    "RetryPolicy",
    "Verdict",
    "classify",
    "is_retryable_status",
    "post",
    "request",
    "retry_after_s",
]

#: what became of one attempt
Verdict = Literal["delivered", "retry", "rejected"]
#: how long the worker sleeps at a time while backing off (close() waits at most this long for it)
_PAUSE_SLICE_S = 0.05


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one delivery attempt."""

    verdict: Verdict
    #: what went wrong ("HTTP 503: ...", "ConnectError: ..."); empty when delivered
    detail: str = ""
    #: the receiver's Retry-After, in seconds from now
    retry_after_s: float | None = None
    #: False when no HTTP answer came back (the receiver could not be reached)
    reached: bool = True
    #: of a delivered batch, the places of the records the receiver refused (counted as failed)
    rejected_items: tuple[int, ...] = ()


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status may succeed if the same request is sent again (408, 429, 5xx)."""
    return status in (408, 429) or status >= 500


def retry_after_s(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds after `now` (epoch seconds)."""
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
    return max(0.0, dt.timestamp() - now)


def classify(response: httpx.Response, now: float) -> Outcome:
    """The outcome an HTTP answer means (see the module docstring); `now` is epoch seconds."""
    status = response.status_code
    if 200 <= status < 300:
        return Outcome("delivered")
    detail = f"HTTP {status}: {response.text[:300]}"
    if is_retryable_status(status):
        return Outcome("retry", detail, retry_after_s(response.headers.get("Retry-After"), now))
    return Outcome("rejected", detail)


def post(client: httpx.Client, url: str, body: bytes, clock: Clock = SYSTEM) -> Outcome:
    """POST `body` to `url` once and classify what happened."""
    return request(client, url, body, clock=clock)[0]


def request(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    clock: Clock = SYSTEM,
) -> tuple[Outcome, httpx.Response | None]:
    """POST `body` to `url` once: the outcome, and the answer (None if none came back)."""
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as e:
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return Outcome("retry", detail, reached=False), None
    return classify(response, clock.time()), response


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a failing record is retried."""

    #: retries of a record from memory before it (and the queue behind it) spill to the spool
    max_retries: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: a receiver's Retry-After longer than this is cut to it
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, outcome: Outcome, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1, 2, ...) before the next."""
        if outcome.retry_after_s is not None:
            return min(outcome.retry_after_s, self.max_retry_after_s)
        d = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(attempt - 1, 30))
        return d / 2 + rng.uniform(0, d / 2)


class Delivery:
    """Delivers records in order through `send`, with a queue, retries and a disk spool.

    See the module docstring. `stats` counts records (``sent``, ``failed``: rejected or put after
    close, ``retried``, ``spooled``, ``dropped``); problems go to `errors`. `on_rejected` is told
    of each record the receiver refused, `on_dropped` of records that did not fit in the spool.
    The spool belongs to the delivery from now on (:meth:`close` closes it).

    With `send_batch` (instead of `send`), the worker hands over up to `batch_max` records at a
    time, in order; the outcome is the batch's (its ``rejected_items`` name refused records).
    """

    def __init__(
        self,
        send: Callable[[bytes], Outcome] | None,
        spool: Spool,
        *,
        send_batch: Callable[[list[bytes]], Outcome] | None = None,
        batch_max: int = 1,
        where: str,
        policy: RetryPolicy = RetryPolicy(),
        queue_size: int = 10_000,
        stats: SinkStats | None = None,
        errors: ErrorLog | None = None,
        unit: str = "record",
        on_rejected: Callable[[bytes, Outcome], None] | None = None,
        on_dropped: Callable[[Sequence[bytes]], None] | None = None,
        clock: Clock = SYSTEM,
        rng: random.Random | None = None,
        thread_name: str = "stockade-delivery",
        join_timeout_s: float = 6.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        if send_batch is None:
            if send is None:
                raise ValueError("Delivery needs send or send_batch")
            one = send
            send_batch, batch_max = (lambda recs: one(recs[0])), 1
        self.where = where
        self.policy = policy
        self.queue_size = queue_size
        self.stats = stats if stats is not None else SinkStats()
        self.errors = errors if errors is not None else ErrorLog(f"delivery to {where}")
        self.unit = unit
        self._send = send_batch
        self.batch_max = batch_max
        self._spool = spool
        self._on_rejected = on_rejected
        self._on_dropped = on_dropped
        self._clock = clock
        self._rng = rng or random.Random()
        self._join_timeout_s = join_timeout_s
        self._cv = threading.Condition()
        self._q: collections.deque[bytes] = collections.deque()
        self._spilling = len(spool) > 0  # new records go behind the spool while it has any
        self._inflight: list[bytes] | None = None
        self._inflight_from_spool = False
        self._down = False  # the last attempt failed with a retryable error
        self._stop = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    # ---- producer side ---------------------------------------------------------------

    def put(self, record: bytes) -> None:
        """Queue one record (or spool it, behind what is spooled); never waits for the network."""
        with self._cv:
            if self._closed:
                self.stats.failed += 1
                self.errors.report(f"{self.unit} emitted after close: not delivered")
                return
            if self._spilling or len(self._q) >= self.queue_size:
                self._spill([record], front=False)
            else:
                self._q.append(record)
            self._cv.notify_all()

    def _spill(self, records: list[bytes], front: bool) -> None:
        """Put records in the spool (lock held); count and report what does not fit."""
        try:
            n = self._spool.prepend(records) if front else self._spool.append(records)
        except OSError as e:
            self.errors.report(
                f"cannot write spool {self._spool.dir}: {e.strerror or e}; {len(records)} {self.unit}(s) dropped"
            )
            self._dropped(records)
            return
        self.stats.spooled += n
        if n:
            self._spilling = True
        if n < len(records):
            self.errors.report(
                f"spool {self._spool.dir} is full (max_spool_bytes={self._spool.max_bytes}): "
                f"{len(records) - n} {self.unit}(s) dropped"
            )
            self._dropped(records[n:])

    def _dropped(self, records: Sequence[bytes]) -> None:
        self.stats.dropped += len(records)
        if self._on_dropped is not None:
            self._on_dropped(records)

    # ---- the worker ------------------------------------------------------------------

    def _next(self) -> list[bytes] | None:
        """Wait for the next records to send (lock held): the queue, then the spool; None to stop."""
        while not self._stop:
            if self._q:
                n = min(self.batch_max, len(self._q))
                self._inflight = [self._q.popleft() for _ in range(n)]
                self._inflight_from_spool = False
                return self._inflight
            if self._spilling:
                try:
                    recs = self._spool.peek_batch(self.batch_max)
                except OSError as e:
                    self.errors.report(f"cannot read spool {self._spool.dir}: {e.strerror or e}")
                    self._cv.wait(1.0)
                    continue
                if recs:
                    self._inflight, self._inflight_from_spool = recs, True
                    return recs
                self._spilling = False
                continue
            self._cv.notify_all()  # idle: wake drain()/close()
            self._cv.wait(self._spool.fsync_interval_s)
            self._sync_spool()
        return None

    def _run(self) -> None:
        while True:
            with self._cv:
                rec = self._next()
                from_spool = self._inflight_from_spool
            if rec is None or not self._deliver(rec, from_spool):
                return

    def _attempt(self, rec: list[bytes]) -> Outcome:
        try:
            return self._send(rec)
        except Exception as e:  # a bug in `send` must not stop delivery: retried, reported
            return Outcome("retry", f"{type(e).__name__}: {e}", reached=False)

    def _deliver(self, rec: list[bytes], from_spool: bool) -> bool:
        """Attempt `rec` until delivered, rejected or spilled; False when the worker must stop."""
        attempt = 0
        while True:
            outcome = self._attempt(rec)
            with self._cv:
                if self._closed:
                    return False  # close() gave up waiting and persisted the record
                match outcome.verdict:
                    case "delivered" | "rejected":
                        self._settle(rec, from_spool, outcome)
                        return True
                    case "retry":
                        attempt += 1
                        if self._failed(rec, from_spool, attempt, outcome):
                            return True
                    case _:
                        assert_never(outcome.verdict)
            if not self._pause(self.policy.delay(attempt, outcome, self._rng)):
                return False  # close() persists the record

    def _settle(self, recs: list[bytes], from_spool: bool, outcome: Outcome) -> None:
        """A final answer for the in-flight records (lock held)."""
        if from_spool:
            try:
                self._spool.advance()
            except OSError as e:
                self.errors.report(f"cannot update spool cursor: {e.strerror or e}")
        refused = (
            range(len(recs))
            if outcome.verdict == "rejected"
            else [i for i in outcome.rejected_items if 0 <= i < len(recs)]
        )
        self.stats.sent += len(recs) - len(refused)
        self.stats.failed += len(refused)
        if self._on_rejected is not None:
            for i in refused:
                self._on_rejected(recs[i], outcome)
        self._down = False
        self._inflight = None
        self._cv.notify_all()

    def _failed(self, recs: list[bytes], from_spool: bool, attempt: int, outcome: Outcome) -> bool:
        """A retryable failure (lock held); True if the record went to the spool instead."""
        self._down = True
        self.errors.report(f"cannot deliver to {self.where}: {outcome.detail}")
        self._cv.notify_all()
        if not from_spool and attempt > self.policy.max_retries:
            # the receiver is down: this record and the queue (older than the spool) go to disk
            records = [*recs, *self._q]
            self._q.clear()
            self._inflight = None
            self._spill(records, front=True)
            return True
        self.stats.retried += len(recs)
        return False

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds` on the clock, a slice at a time; False if close() asked to stop."""
        deadline = self._clock.monotonic() + seconds
        while True:
            with self._cv:
                if self._stop:
                    return False
            left = deadline - self._clock.monotonic()
            if left <= 0:
                return True
            self._clock.sleep(min(left, _PAUSE_SLICE_S))

    def _sync_spool(self) -> None:
        try:
            self._spool.sync()
        except OSError as e:
            self.errors.report(f"cannot fsync spool {self._spool.dir}: {e.strerror or e}")

    # ---- state, drain, close ---------------------------------------------------------

    def _drained(self) -> bool:
        return not self._q and not self._spilling and self._inflight is None

    @property
    def down(self) -> bool:
        """Whether the last attempt failed with a retryable error."""
        with self._cv:
            return self._down

    @property
    def backlog(self) -> int:
        """Records waiting in the disk spool."""
        with self._cv:
            return len(self._spool)

    def pending(self) -> int:
        """Records not yet delivered (queued, in flight and spooled)."""
        with self._cv:
            inflight = (
                len(self._inflight) if self._inflight is not None and not self._inflight_from_spool else 0
            )
            return len(self._q) + inflight + len(self._spool)

    def drain(self, timeout_s: float, give_up_if_down: bool = False) -> bool:
        """Wait until everything is delivered or `timeout_s` passes (or, with `give_up_if_down`,
        the receiver is failing); fsync the spool. True if everything was delivered."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while not self._drained() and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0 or (give_up_if_down and self._down):
                    break
                self._cv.wait(min(left, 0.1))
            self._sync_spool()
            return self._drained()

    def close(self, timeout_s: float) -> None:
        """Deliver for at most `timeout_s` (not at all while the receiver is failing), then keep
        what is left in the spool for the next start; safe to call twice."""
        with self._cv:
            if self._closed:
                return
            deadline = time.monotonic() + timeout_s
            while not self._drained() and not self._down:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.1))
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=self._join_timeout_s)
        with self._cv:
            records = list(self._q)
            if self._inflight is not None and not self._inflight_from_spool:
                records[:0] = self._inflight
            self._q.clear()
            self._inflight = None
            if records:
                self._spill(records, front=True)
            self._closed = True
            try:
                self._spool.close()
            except OSError as e:
                self.errors.report(f"cannot close spool {self._spool.dir}: {e.strerror or e}")
