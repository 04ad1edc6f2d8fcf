"""Syslog with CEF messages (``options.format: cef``) received by real UDP and TCP syslog sockets,
parsed back with a CEF parser that honours the escapes, so `|`, `\\`, `=` and newlines in a rule
name or an output survive the trip."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import free_port
from sinks.receivers import TcpSyslogReceiver
from stockade.config import SinkConfig
from stockade.errors import ConfigError
from stockade.model.alert import PRIORITIES, Alert
from stockade.sinks.build import build_sink
from stockade.sinks.syslog import SyslogOptions, SyslogSink, cef_severity

_HEAD = re.compile(rb"^<(\d+)>1 \S+ \S+ \S+ \S+ \S+ \[stockade@32473 [^\]]*(?:\\\].*?)*\] ")


def split_header(cef: str) -> list[str]:
    """The 7 header fields and the extension: split on unescaped '|', unescaping '\\|' and '\\\\'."""
    fields: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(cef) and len(fields) < 7:
        c = cef[i]
        if c == "\\" and i + 1 < len(cef) and cef[i + 1] in "|\\":
            cur.append(cef[i + 1])
            i += 2
            continue
        assert c not in "\r\n", "newline in a CEF header"
        if c == "|":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    return [*fields, cef[i:]]


def parse_extension(ext: str) -> dict[str, str]:
    """key=value pairs; a value runs to the next unescaped ' key='; unescapes \\=, \\\\, \\n, \\r."""
    out: dict[str, str] = {}
    starts = [m.start() for m in re.finditer(r"(?:^| )[A-Za-z0-9_]+=", ext)]
    starts = [s for s in starts if not _escaped(ext, ext.index("=", s))]
    for n, s in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(ext)
        key, raw = ext[s:end].strip().split("=", 1)
        val: list[str] = []
        i = 0
        while i < len(raw):
            if raw[i] == "\\":
                nxt = raw[i + 1]
                assert nxt in "=\\nr", f"bad escape in {raw!r}"
                val.append({"n": "\n", "r": "\r"}.get(nxt, nxt))
                i += 2
            else:
                assert raw[i] != "=", f"unescaped '=' in {raw!r}"
                assert raw[i] not in "\r\n", "raw newline in an extension value"
                val.append(raw[i])
                i += 1
        out[key] = "".join(val)
    return out


def _escaped(s: str, i: int) -> bool:
    n = 0
    while i - 1 - n >= 0 and s[i - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


def parse(msg: bytes) -> tuple[int, list[str], dict[str, str]]:
    m = _HEAD.match(msg)
    assert m, msg[:200]
    cef = msg[m.end() :].decode("utf-8")
    assert cef.startswith("CEF:0|")
    fields = split_header(cef)
    return int(m.group(1)), fields[:7], parse_extension(fields[7])


NASTY_RULE = "Write below /etc | pipe \\ slash = eq"
NASTY_OUTPUT = "line1\nline2 | a=b \\ c\r\nend msg=x"


def nasty(make_alert: Callable[..., Alert]) -> Alert:
    fields = {"proc.name": "ba=sh", "container.id": "abc123", "user.name": "root", "fd.name": "/etc/x=y"}
    return make_alert(0, rule=NASTY_RULE, output=NASTY_OUTPUT, priority="Critical", output_fields=fields)


def check(msg: bytes, a: Alert) -> None:
    pri, head, ext = parse(msg)
    assert pri == 1 * 8 + 2  # user facility, Critical
    assert head == ["CEF:0", "Stockade", "Stockade", head[3], NASTY_RULE, NASTY_RULE, "8"]
    assert ext["msg"] == NASTY_OUTPUT.replace("\r\n", "\n")
    assert ext["externalId"] == a.id
    assert ext["rt"] == str(a.time_ns // 1_000_000)
    assert ext["sproc"] == "ba=sh" and ext["filePath"] == "/etc/x=y" and ext["suser"] == "root"
    assert (ext["cs1Label"], ext["cs1"]) == ("container", "abc123")
    assert ext["cs3"] == "container,shell,mitre_execution"


def test_cef_over_udp(make_alert: Callable[..., Alert]) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(5)
    a = nasty(make_alert)
    sink = SyslogSink(f"udp://127.0.0.1:{srv.getsockname()[1]}", options=SyslogOptions(format="cef"))
    try:
        sink.emit(a)
        check(srv.recv(65535), a)
    finally:
        sink.close()
        srv.close()


def test_cef_over_tcp_through_the_spool(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    srv = TcpSyslogReceiver()
    entry = SinkConfig(type="syslog", address=f"tcp://127.0.0.1:{srv.port}", options={"format": "cef"})
    sink = build_sink(entry, data_dir=tmp_path)
    assert isinstance(sink, SyslogSink) and sink.outbox is not None  # TCP delivers through the spool
    a = nasty(make_alert)
    try:
        sink.emit(a)
        check(srv.wait(1)[0], a)
    finally:
        sink.close()
        srv.stop()
    assert sink.stats.sent == 1


def test_cef_severity_follows_the_priority() -> None:
    sev = [cef_severity(p) for p in PRIORITIES]
    assert sev == sorted(sev, reverse=True) and sev[0] == 10 and all(0 <= s <= 10 for s in sev)


def test_udp_is_not_spooled_and_bad_format_names_the_key(tmp_path: Path) -> None:
    sink = build_sink(SinkConfig(type="syslog", address=f"udp://127.0.0.1:{free_port()}"), data_dir=tmp_path)
    assert isinstance(sink, SyslogSink) and sink.outbox is None
    sink.close()
    with pytest.raises(
        ConfigError, match=r"key 'sinks.0.options.format': expected rfc5424 or cef, not 'leef'"
    ):
        build_sink(SinkConfig(type="syslog", options={"format": "leef"}), data_dir=tmp_path)
