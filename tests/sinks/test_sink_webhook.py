"""Webhook sink against a real HTTP server on 127.0.0.1 (order, retries, spool, dead letters), and
its retry schedule on a fake clock through httpx's MockTransport."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from stockade.errors import SinkError
from stockade.model.alert import Alert
from stockade.model.clock import FakeClock
from stockade.sinks.webhook import DEAD_LETTER, WebhookOptions, WebhookSink


def make_sink(url: str, spool: Path, **kw: Any) -> WebhookSink:
    opts: dict[str, Any] = {
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "max_retries": 2,
        "timeout_s": 2.0,
        "flush_timeout_s": 5.0,
        "trust_env": False,
    }
    opts.update(kw)
    return WebhookSink(url, spool, options=WebhookOptions.model_validate(opts))


def segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("0*.jsonl"))


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, info: Callable[[], Any] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time {info()}")
        time.sleep(0.01)


def test_posts_falco_json_in_order(receiver: Any, tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    alerts = [make_alert(i) for i in range(20)]
    sink = make_sink(receiver.url, tmp_path / "spool", headers={"Authorization": "Bearer s3cret"})
    for a in alerts:
        sink.emit(a)
    assert sink.drain(10)
    sink.close()
    assert receiver.accepted == [orjson.loads(orjson.dumps(a.to_falco_json())) for a in alerts]
    h = receiver.headers[0]
    assert h["Content-Type"] == "application/json"
    assert h["Authorization"] == "Bearer s3cret"
    # Falco's keys, unchanged, for falcosidekick
    assert set(receiver.accepted[0]) >= {
        "time",
        "rule",
        "priority",
        "output",
        "output_fields",
        "source",
        "tags",
        "hostname",
    }
    assert (sink.stats.sent, sink.stats.failed, sink.stats.dropped) == (20, 0, 0)


def test_slow_receiver_spills_without_blocking(
    receiver: Any, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
    receiver.delay_s = 0.03
    alerts = [make_alert(i) for i in range(40)]
    sink = make_sink(receiver.url, tmp_path / "spool", queue_size=3, max_retries=100)
    t0 = time.monotonic()
    for a in alerts:
        sink.emit(a)
    emit_time = time.monotonic() - t0
    assert emit_time < 0.5  # 40 requests take >= 1.2 s: emit did not wait for them
    assert sink.stats.spooled > 0
    assert sink.drain(20)
    sink.close()
    assert receiver.ids() == [a.id for a in alerts]
    assert sink.stats.sent == 40
    assert segments(tmp_path / "spool") == []


def test_dead_receiver_then_revived(
    tmp_path: Path, make_alert: Callable[..., Alert], start_receiver: Callable[..., Any], dead_url: str
) -> None:
    alerts = [make_alert(i) for i in range(50)]
    sink = make_sink(dead_url, tmp_path / "spool", queue_size=10)
    for a in alerts:
        sink.emit(a)
    wait_for(lambda: sink.stats.spooled == 50)  # past the retry budget everything is on disk
    assert sink.stats.retried >= 2
    assert sink.stats.sent == 0
    assert segments(tmp_path / "spool")
    r = start_receiver(_port(dead_url))
    assert sink.drain(20)
    sink.close()
    assert r.ids() == [a.id for a in alerts]  # exactly once, in order
    assert (sink.stats.sent, sink.stats.dropped, sink.stats.failed) == (50, 0, 0)
    assert segments(tmp_path / "spool") == []


def _port(url: str) -> int:
    port = httpx.URL(url).port
    assert port is not None
    return port


def test_receiver_dies_midway_and_returns(
    tmp_path: Path, make_alert: Callable[..., Alert], start_receiver: Callable[..., Any]
) -> None:
    r = start_receiver()
    sink = make_sink(r.url, tmp_path / "spool", queue_size=5)
    first = [make_alert(i) for i in range(10)]
    for a in first:
        sink.emit(a)
    assert sink.drain(10)
    r.stop()
    before = sink.stats.spooled  # the queue may have overflowed into the spool already
    second = [make_alert(i) for i in range(10, 40)]
    for a in second:
        sink.emit(a)
    wait_for(lambda: sink.stats.spooled - before == 30, info=lambda: sink.stats)
    r2 = start_receiver(r.port)
    assert sink.drain(20)
    sink.close()
    assert r.ids() + r2.ids() == [a.id for a in first + second]


def test_5xx_then_200_is_retried(receiver: Any, tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    receiver.script = [(500, {}), (502, {}), (503, {})]
    alerts = [make_alert(i) for i in range(3)]
    sink = make_sink(receiver.url, tmp_path / "spool", max_retries=5)
    for a in alerts:
        sink.emit(a)
    assert sink.drain(10)
    sink.close()
    assert receiver.ids() == [a.id for a in alerts]
    assert [d["stockade"]["id"] for d in receiver.attempts[:4]] == [alerts[0].id] * 4
    assert sink.stats.retried == 3
    assert sink.stats.sent == 3
    assert sink.stats.spooled == 0


def test_400_goes_to_dead_letter(receiver: Any, tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    receiver.script = [(400, {})]
    alerts = [make_alert(i) for i in range(3)]
    spool = tmp_path / "spool"
    sink = make_sink(receiver.url, spool)
    for a in alerts:
        sink.emit(a)
    assert sink.drain(10)
    sink.close()
    assert receiver.ids() == [alerts[1].id, alerts[2].id]
    assert len(receiver.attempts) == 3  # not retried
    assert (sink.stats.failed, sink.stats.sent, sink.stats.retried) == (1, 2, 0)
    lines = (spool / DEAD_LETTER).read_bytes().splitlines()
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["alert"]["stockade"]["id"] == alerts[0].id
    assert entry["error"].startswith("HTTP 400")
    assert (spool / DEAD_LETTER).stat().st_mode & 0o777 == 0o600
    assert any("refused" in e for e in sink.errors.errors)


def test_spool_survives_restart(
    tmp_path: Path, make_alert: Callable[..., Alert], start_receiver: Callable[..., Any], dead_url: str
) -> None:
    spool = tmp_path / "spool"
    alerts = [make_alert(i) for i in range(10)]
    sink = make_sink(dead_url, spool, max_retries=1000)
    for a in alerts:
        sink.emit(a)
    t0 = time.monotonic()
    sink.close()  # receiver down: close does not wait, everything goes to the spool
    assert time.monotonic() - t0 < 3
    assert sink.stats.sent == 0
    assert segments(spool)
    r = start_receiver(_port(dead_url))
    sink2 = make_sink(r.url, spool)
    assert sink2.drain(10)
    more = [make_alert(i) for i in range(10, 15)]
    for a in more:
        sink2.emit(a)
    assert sink2.drain(10)
    sink2.close()
    assert r.ids() == [a.id for a in alerts + more]
    assert segments(spool) == []


def test_close_deadline_keeps_the_rest_for_next_start(
    receiver: Any, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
    receiver.delay_s = 0.05
    spool = tmp_path / "spool"
    alerts = [make_alert(i) for i in range(30)]
    sink = make_sink(receiver.url, spool, queue_size=100, flush_timeout_s=0.2)
    for a in alerts:
        sink.emit(a)
    sink.close()
    delivered = receiver.ids()
    assert 0 < len(delivered) < 30
    assert sink.pending() == 30 - len(delivered)
    receiver.delay_s = 0
    sink2 = make_sink(receiver.url, spool)
    assert sink2.drain(10)
    sink2.close()
    assert receiver.ids() == [a.id for a in alerts]  # the rest, once each, in order


def test_spool_limit_counts_drops(
    tmp_path: Path, make_alert: Callable[..., Alert], start_receiver: Callable[..., Any], dead_url: str
) -> None:
    alerts = [make_alert(i) for i in range(40)]
    one = len(orjson.dumps(alerts[0].to_falco_json())) + 1
    sink = make_sink(dead_url, tmp_path / "spool", queue_size=2, max_spool_bytes=10 * one + 5)
    for a in alerts:
        sink.emit(a)
    wait_for(lambda: sink.stats.spooled + sink.stats.dropped == 40)
    assert sink.stats.dropped > 0
    assert any("full" in e for e in sink.errors.errors)
    r = start_receiver(_port(dead_url))
    assert sink.drain(10)
    sink.close()
    assert len(r.accepted) == 40 - sink.stats.dropped
    assert r.ids() == sorted(r.ids(), key=lambda i: [a.id for a in alerts].index(i))  # still in order


def test_rejects_bad_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        WebhookSink("ftp://x", tmp_path)


def test_backoff_is_not_cut_short_by_new_alerts(
    tmp_path: Path, make_alert: Callable[..., Alert], dead_url: str
) -> None:
    sink = make_sink(dead_url, tmp_path / "spool", backoff_initial_s=0.2, backoff_max_s=0.2, max_retries=1000)
    t0 = time.monotonic()
    for i in range(50):
        sink.emit(make_alert(i))
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    retried = sink.stats.retried
    t1 = time.monotonic()
    sink.flush()  # the receiver is down: flush does not wait for it
    assert time.monotonic() - t1 < 1.0
    sink.close()
    # delays are 0.1-0.2 s: at most elapsed/0.1 + 1 retries (50 if every emit woke the worker)
    assert 1 <= retried <= elapsed / 0.1 + 1
    assert sink.pending() == 50


def test_spool_dir_in_use_is_an_error(tmp_path: Path) -> None:
    sink = make_sink("http://127.0.0.1:9/", tmp_path)
    try:
        with pytest.raises(SinkError, match="in use"):
            make_sink("http://127.0.0.1:9/", tmp_path)
    finally:
        sink.close()


# -- on a fake clock, through httpx.MockTransport ------------------------------------------------


class Scripted:
    """A MockTransport handler: answers from `script` (status, headers), then 200; records bodies
    and the fake time of each request."""

    def __init__(self, clock: FakeClock, script: list[tuple[int, dict[str, str]]]) -> None:
        self.clock = clock
        self.script = list(script)
        self.times: list[float] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock.monotonic())
        self.bodies.append(orjson.loads(request.content))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return httpx.Response(status, headers=headers, content=b"{}")

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def fake_sink(spool: Path, handler: Scripted, **kw: Any) -> WebhookSink:
    opts = WebhookOptions.model_validate({"trust_env": False, **kw})
    return WebhookSink(
        "http://receiver.test/",
        spool,
        options=opts,
        clock=handler.clock,
        transport=httpx.MockTransport(handler),
    )


def test_retry_after_is_honoured_and_capped(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    clock = FakeClock()
    handler = Scripted(
        clock, [(429, {"Retry-After": "7"}), (503, {"Retry-After": "3600"}), (503, {"Retry-After": "junk"})]
    )
    sink = fake_sink(
        tmp_path / "spool", handler, max_retry_after_s="2m", backoff_initial_s=1, backoff_max_s=1
    )
    sink.emit(make_alert(1))
    assert sink.drain(10)
    sink.close()
    gaps = handler.gaps()
    assert gaps[:2] == pytest.approx([7.0, 120.0])  # Retry-After as given; an hour cut to max_retry_after_s
    assert 0.5 <= gaps[2] <= 1.0  # unreadable: the backoff (1 s, jittered down to half)
    assert (sink.stats.sent, sink.stats.retried, sink.stats.spooled) == (1, 3, 0)


def test_backoff_doubles_up_to_its_cap_then_spills(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    clock = FakeClock()
    handler = Scripted(clock, [(500, {})] * 6)
    sink = fake_sink(tmp_path / "spool", handler, backoff_initial_s=1, backoff_max_s=4, max_retries=3)
    alert = make_alert(1)
    sink.emit(alert)
    assert sink.drain(10)
    sink.close()
    gaps = handler.gaps()
    # retries 1..3 of the queued alert wait 1, 2, 4 s (each jittered into [d/2, d]); the 4th
    # failure spills it, the spool is tried at once and then backs off again from 1 s
    for gap, d in zip(gaps, [1, 2, 4, 0, 1, 2], strict=True):
        assert d / 2 <= gap <= d
    assert (sink.stats.retried, sink.stats.spooled, sink.stats.sent) == (5, 1, 1)
    assert [b["stockade"]["id"] for b in handler.bodies] == [alert.id] * 7


def test_dead_letter_carries_the_clock_time(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    clock = FakeClock(start=1_732_299_200.0)
    handler = Scripted(clock, [(404, {})])
    sink = fake_sink(tmp_path / "spool", handler)
    sink.emit(make_alert(1))
    assert sink.drain(10)
    sink.close()
    entry = orjson.loads((tmp_path / "spool" / DEAD_LETTER).read_bytes())
    assert entry["time"] == "2024-11-22T18:13:20.000000000Z"
    assert entry["url"] == "http://receiver.test/" and entry["error"].startswith("HTTP 404")
