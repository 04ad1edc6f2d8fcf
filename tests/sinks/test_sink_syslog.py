"""Syslog sink: RFC 5424 messages parsed field by field from real UDP, TCP and unix sockets."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.receivers import TcpSyslogReceiver
from stockade.model.alert import Alert
from stockade.sinks.syslog import BOM, SyslogOptions, SyslogSink, format_rfc5424, parse_address

_HEADER = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<ver>1) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
)


def parse_sd(data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Parse one SD-ELEMENT at the start of `data` (honouring escapes); returns (id, params, rest)."""
    s = data.decode("utf-8")
    assert s[0] == "["
    i = s.index(" ")
    sd_id = s[1:i]
    params: dict[str, str] = {}
    while s[i] == " ":
        eq = s.index("=", i)
        name = s[i + 1 : eq]
        assert s[eq + 1] == '"'
        j, val = eq + 2, []
        while s[j] != '"':
            if s[j] == "\\" and s[j + 1] in '"\\]':
                val.append(s[j + 1])
                j += 2
            else:
                assert s[j] not in '"]', "unescaped special character in PARAM-VALUE"
                val.append(s[j])
                j += 1
        params[name] = "".join(val)
        i = j + 1
    assert s[i] == "]"
    return sd_id, params, s[i + 1 :].encode("utf-8")


def parse_5424(msg: bytes) -> dict[str, Any]:
    m = _HEADER.match(msg)
    assert m, msg[:200]
    out: dict[str, Any] = {k: v.decode() for k, v in m.groupdict().items()}
    sd_id, params, rest = parse_sd(msg[m.end() :])
    assert rest.startswith(b" ")
    out.update(sd_id=sd_id, params=params, msg=rest[1:])
    return out


def check_fields(p: dict[str, Any], a: Alert, pri: int) -> None:
    assert int(p["pri"]) == pri
    assert p["ver"] == "1"
    us = a.time_ns % 1_000_000_000 // 1000
    assert p["ts"] == f"2024-11-22T18:13:20.{us:06d}Z"  # microseconds, UTC
    assert p["host"] == a.hostname
    assert p["app"] == "stockade"
    assert p["procid"] == str(os.getpid())
    assert p["sd_id"] == "stockade@32473"
    assert p["params"]["rule"] == a.rule
    assert p["params"]["priority"] == a.priority
    assert p["params"]["id"] == a.id


def test_udp(make_alert: Callable[..., Alert]) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(5)
    port = srv.getsockname()[1]
    sink = SyslogSink(f"udp://127.0.0.1:{port}", options=SyslogOptions.model_validate({"facility": "local3"}))
    a = make_alert(0, rule='Weird "rule" \\ with ] chars', priority="Critical")
    sink.emit(a)
    sink.emit(make_alert(1, priority="Debug"))
    p = parse_5424(srv.recv(65535))
    check_fields(p, a, 19 * 8 + 2)
    assert p["msgid"] == "Weird_rule_with_chars"
    assert p["msg"].startswith(BOM)
    assert orjson.loads(p["msg"][len(BOM) :]) == orjson.loads(orjson.dumps(a.to_falco_json()))
    p2 = parse_5424(srv.recv(65535))
    assert int(p2["pri"]) == 19 * 8 + 7
    sink.close()
    srv.close()
    assert sink.stats.sent == 2


TcpServer = TcpSyslogReceiver


@pytest.fixture
def tcp_server() -> Iterator[TcpServer]:
    s = TcpServer()
    yield s
    s.close()


def test_tcp_octet_counting(tcp_server: TcpServer, make_alert: Callable[..., Alert]) -> None:
    sink = SyslogSink(
        f"tcp://127.0.0.1:{tcp_server.port}",
        format="text",
        options=SyslogOptions.model_validate({"bom": False, "facility": "authpriv"}),
    )
    alerts = [make_alert(i, output=f"multi\nline {i} ünïcode") for i in range(50)]
    for a in alerts:
        sink.emit(a)
    frames = tcp_server.wait(50)
    sink.close()
    assert len(frames) == 50
    for f, a in zip(frames, alerts, strict=True):
        p = parse_5424(f)
        check_fields(p, a, 10 * 8 + 4)
        assert p["msgid"] == "Terminal_shell_in_container"
        assert p["params"]["source"] == "syscall"
        assert p["params"]["workload"] == "default/web"
        assert p["msg"].decode() == a.output
    assert tcp_server.conns == 1


def tcp_conns(s: TcpServer) -> int:
    return s.conns


def test_tcp_reconnects_after_server_restart(make_alert: Callable[..., Alert]) -> None:
    s1 = TcpServer()
    port = s1.port
    sink = SyslogSink(f"tcp://127.0.0.1:{port}", options=SyslogOptions(reconnect_s=0))
    sink.emit(make_alert(0))
    s1.wait(1)
    s1.close()
    sink.emit(make_alert(1))  # the server is gone (connection closed by the peer, port closed)
    s2 = TcpServer(port)
    try:
        sink.emit(make_alert(2))
        frames = s2.wait(1)
        assert parse_5424(frames[-1])["params"]["id"]
        assert (sink.stats.sent, sink.stats.failed) == (2, 1)
        assert tcp_conns(s2) == 1
    finally:
        sink.close()
        s2.close()


def test_tcp_unreachable_is_counted(make_alert: Callable[..., Alert]) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    sink = SyslogSink(f"tcp://127.0.0.1:{port}", options=SyslogOptions(timeout_s=1))
    sink.emit(make_alert(0))
    sink.emit(make_alert(1))
    sink.close()
    assert sink.stats.failed == 2 and sink.stats.sent == 0
    assert "cannot send" in sink.errors.errors[0]


def test_unix_datagram(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = str(tmp_path / "log.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(5)
    sink = SyslogSink(f"unix://{path}")
    a = make_alert(0, priority="Emergency", hostname="")
    sink.emit(a)
    p = parse_5424(srv.recv(65535))
    assert int(p["pri"]) == 8  # user.emerg
    assert p["host"] == socket.gethostname()[:255]
    sink.close()
    srv.close()


def test_format_edge_cases(make_alert: Callable[..., Alert]) -> None:
    a = make_alert(0, rule="Ä" * 10 + " " + "r" * 100, hostname="my host")
    p = parse_5424(format_rfc5424(a, bom=False))
    assert len(p["msgid"]) <= 32 and all(33 <= ord(c) <= 126 for c in p["msgid"])
    assert p["host"] == "my_host"
    assert p["params"]["rule"] == a.rule  # the SD keeps the full UTF-8 name
    assert "count" not in p["params"]
    p2 = parse_5424(format_rfc5424(make_alert(1, count=7), bom=False))
    assert p2["params"]["count"] == "7"


def test_addresses() -> None:
    assert parse_address(None).path == "/dev/log"
    assert parse_address("/run/log").path == "/run/log"
    a = parse_address("tcp://[::1]:6514")
    assert (a.transport, a.host, a.port) == ("tcp", "::1", 6514)
    assert parse_address("udp://h").port == 514
    for bad in ("http://x:1", "udp://", "unix://"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_facilities() -> None:
    assert SyslogOptions().facility == 1  # user
    assert SyslogOptions.model_validate({"facility": "LOCAL7"}).facility == 23
    assert SyslogOptions.model_validate({"facility": 4}).facility == 4
    for bad, message in [
        ("nope", "unknown syslog facility 'nope'"),
        (24, "syslog facility must be 0..23, not 24"),
        (True, "expected a syslog facility name or 0..23"),
    ]:
        with pytest.raises(ValueError, match=message):
            SyslogOptions.model_validate({"facility": bad})
