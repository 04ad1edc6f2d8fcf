"""Webhook sink against a real HTTP server on 127.0.0.1: order, retries, spool, dead letters."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from stockade.model.alert import Alert
from stockade.sinks.webhook import DEAD_LETTER, WebhookSink


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class Receiver:
    """An HTTP server that records the alerts it accepts; `script` sets the next responses."""

    def __init__(self, port: int = 0) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.delay_s = 0.0
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    status, hdrs = rec.script.pop(0) if rec.script else (200, {})
                    delay = rec.delay_s
                if delay:
                    time.sleep(delay)
                with rec.lock:
                    doc = orjson.loads(body)
                    rec.attempts.append(doc)
                    rec.headers.append(dict(self.headers.items()))
                    if status == 200:
                        rec.accepted.append(doc)
                payload = b'{"ok":true}' if status == 200 else b'{"error":"no"}'
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def ids(self) -> list[str]:
        with self.lock:
            return [d["stockade"]["id"] for d in self.accepted]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    return WebhookSink(url, spool, **opts)


def segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("0*.jsonl"))


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, info: Callable[[], Any] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time {info()}")
        time.sleep(0.01)


def test_posts_falco_json_in_order(
    receiver: Receiver, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
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
    receiver: Receiver, tmp_path: Path, make_alert: Callable[..., Alert]
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


def test_dead_receiver_then_revived(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    port = free_port()
    alerts = [make_alert(i) for i in range(50)]
    sink = make_sink(f"http://127.0.0.1:{port}/", tmp_path / "spool", queue_size=10)
    for a in alerts:
        sink.emit(a)
    wait_for(lambda: sink.stats.spooled == 50)  # past the retry budget everything is on disk
    assert sink.stats.retried >= 2
    assert sink.stats.sent == 0
    assert segments(tmp_path / "spool")
    r = Receiver(port)
    try:
        assert sink.drain(20)
        sink.close()
        assert r.ids() == [a.id for a in alerts]  # exactly once, in order
    finally:
        r.stop()
    assert (sink.stats.sent, sink.stats.dropped, sink.stats.failed) == (50, 0, 0)
    assert segments(tmp_path / "spool") == []


def test_receiver_dies_midway_and_returns(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    r = Receiver()
    port = r.port
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
    r2 = Receiver(port)
    try:
        assert sink.drain(20)
        sink.close()
    finally:
        r2.stop()
    assert r.ids() + r2.ids() == [a.id for a in first + second]


def test_5xx_then_200_is_retried(
    receiver: Receiver, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
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


def test_429_retry_after_is_honoured(
    receiver: Receiver, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
    receiver.script = [(429, {"Retry-After": "1"})]
    sink = make_sink(receiver.url, tmp_path / "spool", max_retries=5)
    t0 = time.monotonic()
    sink.emit(make_alert(1))
    assert sink.drain(10)
    elapsed = time.monotonic() - t0
    sink.close()
    assert elapsed >= 0.9  # the backoff alone would have been ~10 ms
    assert len(receiver.accepted) == 1


def test_400_goes_to_dead_letter(
    receiver: Receiver, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
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


def test_spool_survives_restart(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    port = free_port()
    spool = tmp_path / "spool"
    alerts = [make_alert(i) for i in range(10)]
    sink = make_sink(f"http://127.0.0.1:{port}/", spool, max_retries=1000)
    for a in alerts:
        sink.emit(a)
    t0 = time.monotonic()
    sink.close()  # receiver down: close does not wait, everything goes to the spool
    assert time.monotonic() - t0 < 3
    assert sink.stats.sent == 0
    assert segments(spool)
    r = Receiver(port)
    try:
        sink2 = make_sink(r.url, spool)
        assert sink2.drain(10)
        more = [make_alert(i) for i in range(10, 15)]
        for a in more:
            sink2.emit(a)
        assert sink2.drain(10)
        sink2.close()
        assert r.ids() == [a.id for a in alerts + more]
    finally:
        r.stop()
    assert segments(spool) == []


def test_close_deadline_keeps_the_rest_for_next_start(
    receiver: Receiver, tmp_path: Path, make_alert: Callable[..., Alert]
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


def test_spool_limit_counts_drops(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    port = free_port()
    alerts = [make_alert(i) for i in range(40)]
    one = len(orjson.dumps(alerts[0].to_falco_json())) + 1
    sink = make_sink(
        f"http://127.0.0.1:{port}/", tmp_path / "spool", queue_size=2, max_spool_bytes=10 * one + 5
    )
    for a in alerts:
        sink.emit(a)
    wait_for(lambda: sink.stats.spooled + sink.stats.dropped == 40)
    assert sink.stats.dropped > 0
    assert any("full" in e for e in sink.errors.errors)
    r = Receiver(port)
    try:
        assert sink.drain(10)
        sink.close()
        assert len(r.accepted) == 40 - sink.stats.dropped
        assert r.ids() == sorted(r.ids(), key=lambda i: [a.id for a in alerts].index(i))  # still in order
    finally:
        r.stop()


def test_rejects_bad_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        WebhookSink("ftp://x", tmp_path)


def test_backoff_is_not_cut_short_by_new_alerts(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    port = free_port()
    sink = make_sink(
        f"http://127.0.0.1:{port}/",
        tmp_path / "spool",
        backoff_initial_s=0.2,
        backoff_max_s=0.2,
        max_retries=1000,
    )
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
    from stockade.errors import SinkError

    sink = make_sink("http://127.0.0.1:9/", tmp_path)
    try:
        with pytest.raises(SinkError, match="in use"):
            make_sink("http://127.0.0.1:9/", tmp_path)
    finally:
        sink.close()
