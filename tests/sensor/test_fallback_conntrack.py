"""The conntrack + /proc/net backend: listeners and connections of our own children, in the host
network namespace and in one the test creates."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import poll_until
from stockade.sensor.conntrack import ConntrackBackend
from stockade.sockets.procnet import parse_proc_net

SERVER = """
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(s.getsockname()[1], u.getsockname()[1], flush=True)
c, _ = s.accept(); c.recv(10); time.sleep(1.0)
"""
CLIENT = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.send(b"x"); time.sleep(1.0)
"""


def run_pair(b: ConntrackBackend, prefix: list[str]) -> tuple[list[dict[str, Any]], int, int, int, int]:
    srv = subprocess.Popen([*prefix, sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        port, uport = (int(x) for x in srv.stdout.readline().split())
        evs = poll_until(b, timeout=0.5)  # the listener scan sees the server before the client connects
        cli = subprocess.Popen([*prefix, sys.executable, "-c", CLIENT, str(port)])
        evs += poll_until(b, timeout=1.0)
        cli.wait(10)
    finally:
        with srv:  # closes its stdout
            srv.wait(10)
    return evs, srv.pid, cli.pid, port, uport


def check(evs: list[dict[str, Any]], srv: int, cli: int, port: int, uport: int) -> None:
    listen = [e for e in evs if e["evt.type"] == "listen" and e["proc.pid"] == srv]
    assert len(listen) == 1
    assert listen[0]["fd.sport"] == port and listen[0]["fd.sip"] == "127.0.0.1"
    assert listen[0]["fd.l4proto"] == "tcp" and listen[0]["proc.name"].startswith("python")
    bind = [e for e in evs if e["evt.type"] == "bind" and e["proc.pid"] == srv]
    assert len(bind) == 1 and bind[0]["fd.sport"] == uport and bind[0]["fd.l4proto"] == "udp"
    conn = [e for e in evs if e["evt.type"] == "connect" and e["proc.pid"] == cli]
    assert len(conn) == 1, evs
    c = conn[0]
    assert c["fd.sip"] == "127.0.0.1" and c["fd.sport"] == port and c["fd.cip"] == "127.0.0.1"
    assert c["fd.name"] == f"127.0.0.1:{c['fd.cport']}->127.0.0.1:{port}"
    assert c["fd.lport"] == c["fd.cport"] and c["fd.rport"] == port and not c["fd.is_server"]
    assert c["fd.typechar"] == "4" and c["fd.l4proto"] == "tcp" and c["user.uid"] == 0
    acc = [e for e in evs if e["evt.type"] == "accept" and e["proc.pid"] == srv]
    assert len(acc) == 1 and acc[0]["fd.name"] == c["fd.name"] and acc[0]["fd.is_server"]
    assert acc[0]["fd.lport"] == port
    assert not [e for e in evs if e["evt.type"] == "accept" and e["proc.pid"] == cli]


@pytest.mark.root
def test_probe() -> None:
    caps = ConntrackBackend.probe()
    assert caps.available, caps.reason
    assert {"connect", "accept", "listen"} <= caps.evttypes


@pytest.mark.root
def test_loopback_connection_in_host_netns() -> None:
    b = ConntrackBackend(enable_tracking=True, scan_interval_s=0.1)
    b.start()
    chain = f"STOCKADE_CT_{os.getpid()}"
    try:
        assert chain in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        evs, srv, cli, port, uport = run_pair(b, [])
    finally:
        b.close()
    assert chain not in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    check(evs, srv, cli, port, uport)
    assert b.stats.lost.total() == 0


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"stockade-ct-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.root
def test_connection_in_another_netns(netns: str) -> None:
    b = ConntrackBackend(
        [f"/run/netns/{netns}"], include_own_netns=False, enable_tracking=True, scan_interval_s=0.1
    )
    b.start({"connect", "accept", "listen", "bind", "close"})
    try:
        evs, srv, cli, port, uport = run_pair(b, ["ip", "netns", "exec", netns])
        evs += poll_until(b, timeout=0.5)
    finally:
        b.close()
    check(evs, srv, cli, port, uport)
    assert all(e["_netns"] == f"/run/netns/{netns}" for e in evs if e["proc.pid"] in (srv, cli))
    # the namespace's own /proc/net, not the host's: a host socket on the same port is not confused
    closes = [e for e in evs if e["evt.type"] == "close" and e["proc.pid"] in (srv, cli)]
    assert all(e["fd.sport"] == port for e in closes)


def test_parse_proc_net() -> None:
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1\n"
        "   1: 0100007F:9C4E 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 12346 1\n"
        "   garbage line\n"
    )
    socks = parse_proc_net(text, "tcp", 4)
    assert [(s.lip, s.lport, s.rip, s.rport, s.state, s.uid, s.inode) for s in socks] == [
        ("127.0.0.1", 8080, "0.0.0.0", 0, 10, 0, 12345),
        ("127.0.0.1", 40014, "127.0.0.1", 8080, 1, 1000, 12346),
    ]
    v6 = (
        "  sl  local_address                         remote_address ...\n"
        "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 777 1\n"
        "   1: 0000000000000000FFFF00000100007F:0051 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 778 1\n"
    )
    s6 = parse_proc_net(v6, "tcp", 6)
    assert [(s.lip, s.lport) for s in s6] == [("::1", 80), ("127.0.0.1", 81)]
