"""The certificate tree the tests of tests/certs share (session): every format in the places a node
keeps them, made in the test run (tests/tlsgen.py), with what a scan must find there."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from helpers import need
from tlsgen import Key, fingerprint, key_pem, keytool_convert, make_cert, pem, pkcs12_bytes


@dataclass
class CertTree:
    """A root directory of certificate files and what a scan of it must give."""

    root: Path
    #: (path inside the root, format, entry, sha256) of every certificate outside trust stores
    expected: set[tuple[str, str, str, str]] = field(default_factory=set)
    #: how many certificates the trust store holds
    trust_store: int = 0
    leaf: tuple[x509.Certificate, Key] | None = None


def _write(root: Path, inner: str, data: bytes) -> None:
    p = root / inner.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


@pytest.fixture(scope="session")
def cert_tree(tmp_path_factory: pytest.TempPathFactory) -> CertTree:
    """PEM (a chain, a key beside it), DER, PKCS#12 without a password, a JKS made by keytool, an OS
    trust bundle, a broken PEM, a symbolic link, and a PEM outside the known locations."""
    need(shutil.which("keytool"), "keytool (openjdk-17-jre-headless) is not installed")
    root = tmp_path_factory.mktemp("certtree")
    ca = make_cert("Tree CA", 3650, ca=True, ec_key=True)
    leaf = make_cert("tree.test", 10, issuer=ca, sans=("tree.test",))
    client = make_cert("client.test", 200, issuer=ca, ec_key=True)
    app = make_cert("app.test", -3, ec_key=True)
    java = make_cert("java.test", 400, issuer=ca)
    roots = [make_cert(f"Trust Root {i}", 5000 - 6000 * (i == 0), ca=True, ec_key=True)[0] for i in range(3)]
    t = CertTree(root, leaf=leaf)
    _write(root, "/etc/nginx/certs/web.pem", pem(leaf[0]) + pem(ca[0]))
    _write(root, "/etc/nginx/certs/web.key", key_pem(leaf[1]))
    t.expected |= {
        ("/etc/nginx/certs/web.pem", "pem", "0", fingerprint(leaf[0])),
        ("/etc/nginx/certs/web.pem", "pem", "1", fingerprint(ca[0])),
    }
    _write(root, "/srv/app/client.der", client[0].public_bytes(serialization.Encoding.DER))
    t.expected.add(("/srv/app/client.der", "der", "0", fingerprint(client[0])))
    _write(root, "/app/keystore.p12", pkcs12_bytes(app[0], app[1]))
    t.expected.add(("/app/keystore.p12", "pkcs12", "web", fingerprint(app[0])))
    src = root / "java.p12"
    src.write_bytes(pkcs12_bytes(java[0], java[1], b"changeit", chain=(ca[0],)))
    (root / "opt/java").mkdir(parents=True)
    keytool_convert(src, root / "opt/java/server.jks", "JKS")
    src.unlink()
    t.expected |= {
        ("/opt/java/server.jks", "jks", "web", fingerprint(java[0])),
        ("/opt/java/server.jks", "jks", "web[1]", fingerprint(ca[0])),
    }
    _write(root, "/etc/ssl/certs/ca-certificates.crt", b"".join(pem(c) for c in roots))
    t.trust_store = len(roots)
    _write(
        root,
        "/home/u/broken.pem",
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    )
    os.symlink("/etc/nginx/certs/web.pem", root / "home/u/link.pem")
    _write(root, "/usr/share/doc/elsewhere.pem", pem(ca[0]))  # not in a known location: not read
    return t
