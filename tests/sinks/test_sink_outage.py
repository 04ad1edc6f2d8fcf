"""Issue 15's promise for every network sink, against its real receiver on 127.0.0.1: a destination
that is down for a while receives every alert after it recovers, in order, none lost, none
duplicated. Three ways of being down: nothing listens on the port (then the receiver starts there),
the receiver answers 503 (SMTP: 451) for a while, and the sink is closed and started again (the
process restarts) while the destination is down: the disk spool delivers after the restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, wait_until
from sinks.receivers import NETWORK_SINKS, HttpReceiver, NetworkSink, SmtpReceiver
from stockade.config import SinkConfig
from stockade.model.alert import Alert
from stockade.model.clock import FakeClock
from stockade.sinks.build import build_sink
from stockade.sinks.interface import Sink
from stockade.sinks.outbox import OutboxSink
from stockade.sinks.syslog import SyslogSink

N = 12
KINDS = sorted(NETWORK_SINKS)
ANSWERING = [k for k in KINDS if NETWORK_SINKS[k].answers]


class Harness:
    """Builds a kind's sink for a port and starts its receivers; stops them all after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.receivers: list[Any] = []
        self.sinks: list[Sink] = []

    def sink(self, net: NetworkSink, port: int, clock: Any = None, **options: Any) -> Sink:
        entry = net.entry(port)
        fast: dict[str, Any] = {
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "max_retries": 2,
            "timeout_s": 2.0,
            "flush_timeout_s": 0.5,
        }
        if net.http:
            fast["trust_env"] = False
        entry["options"] = {**fast, **entry.get("options", {}), **options}
        kw = {"clock": clock} if clock is not None else {}
        sink = build_sink(SinkConfig(type=net.kind, **entry), data_dir=self.tmp_path, **kw)
        self.sinks.append(sink)
        return sink

    def start(self, net: NetworkSink, port: int) -> Any:
        r = net.start(port)
        self.receivers.append(r)
        return r

    def close(self) -> None:
        for s in self.sinks:
            s.close()
        for r in self.receivers:
            r.stop()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def pending(sink: Sink) -> int:
    assert isinstance(sink, OutboxSink | SyslogSink)
    return sink.pending()


def drain(sink: Sink, timeout_s: float = 10.0) -> bool:
    assert isinstance(sink, OutboxSink | SyslogSink)
    return sink.drain(timeout_s)


def wait_delivered(net: NetworkSink, receiver: Any, want: list[str], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(net.ids(receiver)) < len(want) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # anything more (a repeat) would have arrived by now
    assert net.ids(receiver) == want  # every alert, in order, each once


@pytest.mark.parametrize("kind", KINDS)
def test_down_then_up_delivers_everything_in_order_once(
    kind: str, harness: Harness, make_alert: Callable[..., Alert]
) -> None:
    net = NETWORK_SINKS[kind]
    port = free_port()
    sink = harness.sink(net, port)
    alerts = [make_alert(i) for i in range(N)]
    for a in alerts:
        sink.emit(a)
    # nothing listens: the alerts are retried, then wait in the disk spool
    assert wait_until(lambda: sink.stats.spooled >= N, timeout=10), sink.stats
    assert sink.stats.sent == 0 and sink.stats.retried > 0 and pending(sink) == N
    receiver = harness.start(net, port)
    assert drain(sink)
    wait_delivered(net, receiver, [a.id for a in alerts])
    st = sink.stats
    assert (st.sent, st.failed, st.dropped) == (N, 0, 0), st


@pytest.mark.parametrize("kind", ANSWERING)
def test_refusing_for_a_while_then_accepting(
    kind: str, harness: Harness, make_alert: Callable[..., Alert]
) -> None:
    """503 with Retry-After: 120 (SMTP: 451) for the first answers; a fake clock makes the waits
    instant and shows they were honoured."""
    net = NETWORK_SINKS[kind]
    port = free_port()
    receiver = harness.start(net, port)
    refusals = 5
    if isinstance(receiver, SmtpReceiver):
        receiver.fail_next = refusals
    else:
        assert isinstance(receiver, HttpReceiver)
        receiver.script = [(503, {"Retry-After": "120"})] * refusals
    clock = FakeClock()
    sink = harness.sink(net, port, clock=clock, max_retries=100)
    alerts = [make_alert(i) for i in range(N)]
    for a in alerts:
        sink.emit(a)
    assert drain(sink)
    wait_delivered(net, receiver, [a.id for a in alerts])
    assert sink.stats.sent == N and sink.stats.retried >= refusals
    if isinstance(receiver, HttpReceiver):
        assert sum(clock.sleeps) >= refusals * 120  # Retry-After honoured
        assert len(receiver.requests) - len(receiver.bodies()) == refusals


@pytest.mark.parametrize("kind", KINDS)
def test_restart_while_down_delivers_from_the_spool(
    kind: str, harness: Harness, make_alert: Callable[..., Alert]
) -> None:
    net = NETWORK_SINKS[kind]
    port = free_port()
    first = harness.sink(net, port)
    alerts = [make_alert(i) for i in range(N)]
    for a in alerts[: N // 2]:
        first.emit(a)
    first.close()  # the process stops while the destination is down: all of it is in the spool
    assert first.stats.sent == 0 and first.stats.dropped == 0
    second = harness.sink(net, port)
    assert pending(second) == N // 2
    for a in alerts[N // 2 :]:
        second.emit(a)  # behind the spooled ones
    receiver = harness.start(net, port)
    assert drain(second)
    wait_delivered(net, receiver, [a.id for a in alerts])
    assert (second.stats.sent, second.stats.dropped) == (N, 0)
