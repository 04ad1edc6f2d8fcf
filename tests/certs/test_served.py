"""Certificates served on listening ports: a TLS server of the test on loopback (a chain: leaf and
CA), a plain TCP port beside it, and a port bound to no loopback address (never connected to)."""

from __future__ import annotations

import socket
from pathlib import Path

from stockade.certs.served import Listener, listening, scan_served
from tlsgen import TLSServer, fingerprint, key_pem, make_cert, pem


def test_the_chain_served_on_loopback_is_read_and_plain_ports_are_counted(tmp_path: Path) -> None:
    ca = make_cert("Served CA", 3650, ca=True, ec_key=True)
    leaf = make_cert("served.test", 10, issuer=ca, sans=("served.test",), ec_key=True)
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(pem(leaf[0]) + pem(ca[0]))
    key.write_bytes(key_pem(leaf[1]))
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen(4)
    plain_port = plain.getsockname()[1]
    with plain, TLSServer(chain, key) as srv, TLSServer(chain, key, host="::1") as srv6:
        ports = {(x.address, x.port) for x in listening()}
        assert ("127.0.0.1", srv.port) in ports and ("::1", srv6.port) in ports
        scan = scan_served(None, timeout=5)
        served = [r for r in scan.certs if r.place.location == f"tcp://127.0.0.1:{srv.port}"]
        served6 = [r for r in scan.certs if r.place.location == f"tcp://[::1]:{srv6.port}"]
    assert [(r.place.entry, r.sha256) for r in served] == [
        ("0", fingerprint(leaf[0])),
        ("1", fingerprint(ca[0])),
    ]
    assert [r.sha256 for r in served6] == [fingerprint(leaf[0]), fingerprint(ca[0])]
    r = served[0]
    assert (r.place.source, r.place.format, r.place.container_id, r.subject) == (
        "served",
        "tls",
        "",
        "CN=served.test",
    )
    assert not any(x.place.location.endswith(f":{plain_port}") for x in scan.certs)
    assert scan.counts["not_tls"] >= 1 and scan.counts["tls_ports"] >= 2


def test_only_loopback_addresses_are_targets() -> None:
    assert Listener(4, "0.0.0.0", 443).loopback_target() == "127.0.0.1"
    assert Listener(4, "127.0.0.53", 53).loopback_target() == "127.0.0.53"
    assert Listener(4, "10.1.2.3", 443).loopback_target() is None
    assert Listener(6, "::", 443).loopback_target() == "::1"
    assert Listener(6, "fd00::1", 443).loopback_target() is None
