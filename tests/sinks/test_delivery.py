"""The one home of reliable HTTP delivery: the retry classifier, the backoff policy and the
spool-backed loop, on a fake clock (no sleeping) and without a network."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from stockade.model.clock import FakeClock
from stockade.model.errorlog import ErrorLog
from stockade.sinks.delivery import (
    Delivery,
    Outcome,
    RetryPolicy,
    classify,
    is_retryable_status,
    post,
    retry_after_s,
)
from stockade.sinks.spool import Spool

NOW = 1_732_299_200.0  # Fri, 22 Nov 2024 18:13:20 GMT


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (301, "rejected"),  # a redirect that was not followed
        (400, "rejected"),
        (401, "rejected"),
        (404, "rejected"),
        (408, "retry"),
        (413, "rejected"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (599, "retry"),
    ],
)
def test_classify_statuses(status: int, verdict: str) -> None:
    outcome = classify(httpx.Response(status, text="why"), NOW)
    assert outcome.verdict == verdict
    assert is_retryable_status(status) == (verdict == "retry")
    assert outcome.detail == ("" if verdict == "delivered" else f"HTTP {status}: why")


def test_retry_after_forms() -> None:
    assert retry_after_s("120", NOW) == 120.0
    assert retry_after_s(" 1.5 ", NOW) == 1.5
    assert retry_after_s("-3", NOW) == 0.0
    assert retry_after_s("Fri, 22 Nov 2024 18:14:00 GMT", NOW) == 40.0
    assert retry_after_s("Fri, 22 Nov 2024 18:00:00 GMT", NOW) == 0.0  # in the past: now
    assert retry_after_s("soon", NOW) is None
    assert retry_after_s(None, NOW) is None
    r = httpx.Response(503, headers={"Retry-After": "Fri, 22 Nov 2024 18:13:30 GMT"})
    assert classify(r, NOW).retry_after_s == 10.0
    assert classify(httpx.Response(400, headers={"Retry-After": "5"}), NOW).retry_after_s is None


def test_post_turns_transport_errors_into_retries() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        outcome = post(client, "http://x.test/", b"{}", FakeClock(NOW))
    assert outcome == Outcome("retry", "ConnectError: connection refused", reached=False)
    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(503))) as client:
        outcome = post(client, "http://x.test/", b"{}", FakeClock(NOW))
    assert outcome.verdict == "retry" and outcome.reached


def test_policy_delays() -> None:
    policy = RetryPolicy(backoff_initial_s=1, backoff_max_s=10, max_retry_after_s=60)
    rng = random.Random(7)
    fail = Outcome("retry", "x")
    for attempt, d in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (40, 10)]:
        delays = [policy.delay(attempt, fail, rng) for _ in range(50)]
        assert all(d / 2 <= x <= d for x in delays)
        assert max(delays) - min(delays) > d / 10  # jittered, so clients do not retry in step
    assert policy.delay(1, Outcome("retry", "x", retry_after_s=30), rng) == 30
    assert policy.delay(1, Outcome("retry", "x", retry_after_s=3600), rng) == 60


# -- the loop ------------------------------------------------------------------------------------


class Receiver:
    """A `send` that answers from a script (then delivers), recording every attempt's fake time."""

    def __init__(self, clock: FakeClock, script: Sequence[Outcome] = ()) -> None:
        self.clock = clock
        self.script = list(script)
        self.delivered: list[bytes] = []
        self.attempts: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, rec: bytes) -> Outcome:
        with self.lock:
            self.attempts.append((self.clock.monotonic(), rec))
            outcome = self.script.pop(0) if self.script else Outcome("delivered")
            if outcome.verdict == "delivered":
                self.delivered.append(rec)
            return outcome


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def started() -> Iterator[list[Delivery]]:
    """Deliveries made by a test; closed after it (if the test did not)."""
    made: list[Delivery] = []
    yield made
    for d in made:
        d.close(1.0)


def make(
    started: list[Delivery],
    tmp_path: Path,
    receiver: Receiver,
    queue_size: int = 100,
    max_spool_bytes: int = 1 << 20,
) -> tuple[Delivery, list[Sequence[bytes]], list[tuple[bytes, Outcome]]]:
    dropped: list[Sequence[bytes]] = []
    rejected: list[tuple[bytes, Outcome]] = []
    errors = ErrorLog("delivery", keep=100_000)  # a failing receiver is retried (and reported) often
    spool = Spool(tmp_path / "spool", max_bytes=max_spool_bytes, clock=receiver.clock)
    d = Delivery(
        receiver,
        spool,
        where="http://receiver.test/",
        policy=RetryPolicy(max_retries=2, backoff_initial_s=1, backoff_max_s=8),
        errors=errors,
        on_dropped=dropped.append,
        on_rejected=lambda rec, o: rejected.append((rec, o)),
        clock=receiver.clock,
        rng=random.Random(1),
        queue_size=queue_size,
    )
    started.append(d)
    return d, dropped, rejected


def recs(n: int, start: int = 0) -> list[bytes]:
    return [b'{"n":%d}' % i for i in range(start, start + n)]


def test_delivers_in_order_and_counts(tmp_path: Path, clock: FakeClock, started: list[Delivery]) -> None:
    receiver = Receiver(clock)
    d, _, _ = make(started, tmp_path, receiver)
    for r in recs(20):
        d.put(r)
    assert d.drain(10)
    assert receiver.delivered == recs(20)
    assert (d.stats.sent, d.stats.retried, d.stats.spooled, d.stats.failed) == (20, 0, 0, 0)
    assert d.pending() == 0 and d.backlog == 0


def test_a_failing_record_spills_with_the_queue_and_order_is_kept(
    tmp_path: Path, clock: FakeClock, started: list[Delivery]
) -> None:
    down = [Outcome("retry", "HTTP 503: busy")] * 4  # 1 try + 2 retries, then the spool head once more
    receiver = Receiver(clock, down)
    d, _, _ = make(started, tmp_path, receiver)
    for r in recs(5):
        d.put(r)
    assert d.drain(10)
    assert receiver.delivered == recs(5)  # once each, in order
    assert [rec for _, rec in receiver.attempts[:5]] == [recs(1)[0]] * 5
    assert d.stats.retried == 3 and d.stats.sent == 5
    assert d.stats.spooled >= 1  # the failing record (and what was queued behind it) went to disk
    assert any("cannot deliver to http://receiver.test/: HTTP 503: busy" in e for e in d.errors.errors)
    times = [t for t, _ in receiver.attempts]
    assert 0.5 <= times[1] - times[0] <= 1 and 1 <= times[2] - times[1] <= 2  # backoff on the clock


def test_rejected_records_are_handed_back_and_not_retried(
    tmp_path: Path, clock: FakeClock, started: list[Delivery]
) -> None:
    receiver = Receiver(clock, [Outcome("rejected", "HTTP 400: bad")])
    d, _, rejected = make(started, tmp_path, receiver)
    for r in recs(3):
        d.put(r)
    assert d.drain(10)
    assert rejected == [(recs(1)[0], Outcome("rejected", "HTTP 400: bad"))]
    assert receiver.delivered == recs(3)[1:]
    assert (d.stats.failed, d.stats.sent, d.stats.retried) == (1, 2, 0)


def test_a_send_that_raises_is_retried_not_fatal(
    tmp_path: Path, clock: FakeClock, started: list[Delivery]
) -> None:
    calls: list[bytes] = []

    def flaky(rec: bytes) -> Outcome:
        calls.append(rec)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return Outcome("delivered")

    d = Delivery(flaky, Spool(tmp_path / "s", clock=clock), where="x", clock=clock, rng=random.Random(1))
    started.append(d)
    d.put(b"{}")
    assert d.drain(10)
    assert len(calls) == 2 and d.stats.sent == 1
    assert any("RuntimeError: bug" in e for e in d.errors.errors)


def test_full_spool_drops_are_counted_and_reported(
    tmp_path: Path, clock: FakeClock, started: list[Delivery]
) -> None:
    receiver = Receiver(clock, [Outcome("retry", "down")] * 1000)
    d, dropped, _ = make(started, tmp_path, receiver, queue_size=1, max_spool_bytes=40)
    for r in recs(10):
        d.put(r)
    d.close(0.5)
    assert d.stats.spooled + d.stats.dropped + d.stats.sent == 10
    assert d.stats.dropped > 0 and sum(len(x) for x in dropped) == d.stats.dropped
    assert any("is full (max_spool_bytes=40)" in e for e in d.errors.errors)


def test_close_keeps_the_rest_for_the_next_start(
    tmp_path: Path, clock: FakeClock, started: list[Delivery]
) -> None:
    receiver = Receiver(clock, [Outcome("retry", "down")] * 1000)
    d, _, _ = make(started, tmp_path, receiver)
    for r in recs(5):
        d.put(r)
    d.close(0.5)  # the receiver is down: close does not wait for it
    d.close(0.5)  # twice is fine
    d.put(b'{"late":1}')
    assert d.stats.failed == 1 and "emitted after close" in d.errors.errors[-1]
    assert receiver.delivered == []
    on_disk = Spool(tmp_path / "spool")
    assert len(on_disk) == 5
    on_disk.close()
    again = Receiver(clock)
    d2, _, _ = make(started, tmp_path, again)
    assert d2.drain(10)
    assert again.delivered == recs(5)


def test_drain_gives_up_while_the_receiver_is_down(
    tmp_path: Path, clock: FakeClock, started: list[Delivery]
) -> None:
    receiver = Receiver(clock, [Outcome("retry", "down")] * 10_000)
    d, _, _ = make(started, tmp_path, receiver)
    d.put(b"{}")
    assert not d.drain(5, give_up_if_down=True)
    assert d.down and d.pending() == 1
