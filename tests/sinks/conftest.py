"""Fixtures for the sink tests: alerts to send, an HTTP receiver and a syslog listener on 127.0.0.1
(the servers themselves are in receivers.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from helpers import free_port
from sinks.receivers import HttpReceiver
from stockade.model.alert import Alert

#: 2024-11-22T18:13:20.123456789Z
T0 = 1_732_299_200_123_456_789


def _make_alert(n: int = 0, **kw: Any) -> Alert:
    fields = {"proc.name": "bash", "container.id": "abc123", "user.name": "root", "n": n}
    base: dict[str, Any] = {
        "time_ns": T0 + n * 1000,
        "rule": "Terminal shell in container",
        "priority": "Warning",
        "output": f"A shell was spawned in a container (user=root proc=bash n={n})",
        "output_fields": fields,
        "source": "syscall",
        "tags": ["container", "shell", "mitre_execution"],
        "hostname": "node-1",
        "workload": "default/web",
        "event_ids": [f"ev-{n}"],
    }
    base.update(kw)
    return Alert(**base)


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    return _make_alert


class Receiver(HttpReceiver):
    """An HTTP server that records the alerts (JSON bodies) it accepts; `script` sets the next
    responses."""

    def __init__(self, port: int = 0) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        super().__init__(port)

    def on_request(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().on_request(status, headers, body)
        doc = orjson.loads(body)
        self.attempts.append(doc)
        self.headers.append(headers)
        if 200 <= status < 300:
            self.accepted.append(doc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def ids(self) -> list[str]:
        with self.lock:
            return [d["stockade"]["id"] for d in self.accepted]


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    """Starts receivers (on a given port, or any free one); all are stopped after the test."""
    started: list[Receiver] = []

    def start(port: int = 0) -> Receiver:
        r = Receiver(port)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver]) -> Receiver:
    """A running HTTP receiver on 127.0.0.1."""
    return start_receiver()


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing answers."""
    return f"http://127.0.0.1:{free_port()}/"


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 (a syslog server), closed after the test."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()
