"""The sink contract, run over every registered sink: built from the registry with minimal
settings, emit, flush, close (twice), stats, and options checked by the sink's own model.

A new sink is covered by adding its registry line, and by telling the ``destination`` fixture below
where it delivers (its entry's keys: a path, an address, a URL) and how to read back what arrived.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import free_port
from sinks.receivers import NETWORK_SINKS, NetworkSink
from stockade.config import SinkConfig
from stockade.errors import ConfigError
from stockade.model.alert import Alert
from stockade.sinks.build import build_sink
from stockade.sinks.interface import Sink, SinkOptions
from stockade.sinks.memory import MemorySink
from stockade.sinks.registry import SINKS

N = 5


@dataclass
class Destination:
    """Where a sink under test delivers: its entry's keys, and the alert ids that arrived there."""

    entry: dict[str, Any]
    received: Callable[[Sink], list[str]]


def _memory(sink: Sink) -> list[str]:
    assert isinstance(sink, MemorySink)
    return [a.id for a in sink.alerts]


def _ids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(x)["stockade"]["id"] for x in lines]


def _file(tmp_path: Path) -> Destination:
    path = tmp_path / "out" / "alerts.jsonl"
    return Destination({"path": str(path)}, lambda _: _ids(path.read_bytes().splitlines()))


def _syslog(udp: socket.socket) -> Destination:
    def received(_: Sink) -> list[str]:
        got = []
        for _i in range(N):
            msg = udp.recv(65535)
            got.append(msg[msg.index(b"\xef\xbb\xbf") + 3 :])
        return _ids(got)

    return Destination({"address": f"udp://127.0.0.1:{udp.getsockname()[1]}"}, received)


def _network(net: NetworkSink, request: pytest.FixtureRequest) -> Destination:
    """A network sink's destination: its receiver on a free port (stopped after the test)."""
    port = free_port()
    receiver = net.start(port)
    request.addfinalizer(receiver.stop)
    entry = net.entry(port)
    if net.http:
        entry["options"] = {**entry.get("options", {}), "trust_env": False}
    return Destination(entry, lambda _: net.ids(receiver))


def _stdout(capfd: pytest.CaptureFixture[bytes]) -> Destination:
    return Destination({}, lambda _: _ids(capfd.readouterr().out.splitlines()))


@pytest.fixture
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Destination:
    """The destination of the sink named by the test's parameter (servers started only for it)."""
    kind = request.param
    if kind == "file":
        return _file(tmp_path)
    if kind == "syslog":
        return _syslog(request.getfixturevalue("udp_listener"))
    if kind == "stdout":
        return _stdout(request.getfixturevalue("capfdbinary"))
    if kind == "memory":
        return Destination({}, _memory)
    if kind in NETWORK_SINKS:
        return _network(NETWORK_SINKS[kind], request)
    pytest.fail(f"sink {kind!r}: tell the destination fixture of {__file__} where it delivers")


KINDS = SINKS.names()


@pytest.mark.parametrize(("kind", "destination"), [(k, k) for k in KINDS], indirect=["destination"])
def test_every_sink_delivers_and_closes_twice(
    kind: str, destination: Destination, tmp_path: Path, make_alert: Callable[..., Alert]
) -> None:
    sink = build_sink(SinkConfig(type=kind, **destination.entry), data_dir=tmp_path)
    assert sink.name == kind
    alerts = [make_alert(i) for i in range(N)]
    try:
        for a in alerts:
            sink.emit(a)
        sink.flush()
    finally:
        sink.close()
    sink.close()  # twice is safe
    st = sink.stats
    assert (st.sent, st.failed, st.dropped) == (N, 0, 0), st
    assert destination.received(sink) == [a.id for a in alerts]  # in order, each once


@pytest.mark.parametrize("kind", KINDS)
def test_every_sink_owns_a_strict_options_model(kind: str) -> None:
    plugin = SINKS.load(kind)
    assert issubclass(plugin.Options, SinkOptions)
    assert plugin.Options.model_config.get("extra") == "forbid"
    assert plugin.Options.__doc__
    defaults = plugin.Options()  # every option has a default: a bare entry needs none
    assert defaults.name is None
    assert callable(plugin.from_config)


@pytest.mark.parametrize("kind", KINDS)
def test_every_sink_rejects_an_unknown_option_naming_the_key(kind: str, tmp_path: Path) -> None:
    entry = SinkConfig(type=kind, options={"no_such_option": 1})
    with pytest.raises(ConfigError) as ei:
        build_sink(entry, index=2, data_dir=tmp_path)
    msg = str(ei.value)
    assert msg.startswith(f"key 'sinks.2.options.no_such_option': unknown option for a {kind} sink (known: ")
    assert "name" in msg.split("known: ")[1]


@pytest.mark.parametrize(("kind", "destination"), [(k, k) for k in KINDS], indirect=["destination"])
def test_every_sink_takes_its_name_from_the_options(
    kind: str, destination: Destination, tmp_path: Path
) -> None:
    entry = SinkConfig(
        type=kind,
        **{**destination.entry, "options": {**destination.entry.get("options", {}), "name": "mine"}},
    )
    sink = build_sink(entry, data_dir=tmp_path)
    try:
        assert sink.name == "mine"
    finally:
        sink.close()
