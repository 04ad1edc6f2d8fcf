"""Certificates and TLS servers made in the test run (tests of stockade.certs and the e2e).

* :func:`make_cert`: a key and an X.509 certificate made with ``cryptography``: self-signed or
  signed by an issuer, valid for a number of days from now (negative: expired), RSA or EC.
* :func:`write_formats`: one certificate written as PEM, DER and PKCS#12 (no password); Java
  keystores (JKS, JCEKS, PKCS#12) made by the JDK's ``keytool`` (:func:`keytool_store`).
* :class:`TLSServer`: a TLS server on a loopback address in a thread of the test, serving a chain
  (leaf first) to every handshake, until closed. ``python tlsgen.py serve CHAIN.pem KEY.pem PORT``
  runs one as a process (for a container's network namespace: ``nsenter -n -t PID python ...``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def make_cert(
    cn: str,
    days: float,
    *,
    issuer: tuple[x509.Certificate, Key] | None = None,
    ca: bool = False,
    sans: tuple[str, ...] = (),
    ec_key: bool = False,
) -> tuple[x509.Certificate, Key]:
    """A certificate for `cn` expiring `days` from now (key: RSA 2048, or EC P-256)."""
    key: Key = ec.generate_private_key(ec.SECP256R1()) if ec_key else rsa.generate_private_key(65537, 2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    sign_cert, sign_key = issuer if issuer is not None else (None, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(sign_cert.subject if sign_cert is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=max(1.0, -days + 1)))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return b.sign(sign_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> bytes:
    """The PEM of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Key) -> bytes:
    """The unencrypted PKCS#8 PEM of a key."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hexadecimal."""
    return cert.fingerprint(hashes.SHA256()).hex()


def pkcs12_bytes(
    cert: x509.Certificate, key: Key, password: bytes | None = None, chain: tuple[x509.Certificate, ...] = ()
) -> bytes:
    """A PKCS#12 file of a key, its certificate and the rest of its chain (no password unless given)."""
    enc = (
        serialization.NoEncryption() if password is None else serialization.BestAvailableEncryption(password)
    )
    return pkcs12.serialize_key_and_certificates(b"web", key, cert, list(chain) or None, enc)


def keytool_store(path: Path, kind: str, certs: dict[str, x509.Certificate], password: str) -> Path:
    """A Java keystore of `kind` (JKS, JCEKS, PKCS12) holding `certs` (alias -> certificate) as
    trusted entries, made by the JDK's keytool."""
    keytool = shutil.which("keytool")
    assert keytool is not None, "keytool (openjdk-17-jre-headless) is missing"
    for alias, cert in certs.items():
        der = path.with_suffix(f".{alias}.der")
        der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        subprocess.run(
            [keytool, "-importcert", "-noprompt", "-alias", alias, "-file", str(der), "-keystore", str(path),
             "-storetype", kind, "-storepass", password],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        der.unlink()
    return path


def keytool_convert(src_p12: Path, dest: Path, kind: str, password: str = "changeit") -> Path:
    """A Java keystore of `kind` (JKS, JCEKS) made by keytool from a PKCS#12 file (same password):
    its key entry keeps the PKCS#12's certificate chain."""
    keytool = shutil.which("keytool")
    assert keytool is not None, "keytool (openjdk-17-jre-headless) is missing"
    subprocess.run(
        [keytool, "-importkeystore", "-noprompt", "-srckeystore", str(src_p12), "-srcstoretype", "PKCS12",
         "-srcstorepass", password, "-destkeystore", str(dest), "-deststoretype", kind,
         "-deststorepass", password],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return dest


def _context(chain_pem: Path, key_pem_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain_pem), str(key_pem_path))
    return ctx


class TLSServer:
    """A TLS server on `host` (a free port), serving the chain of `chain_pem` (leaf first) with
    `key_pem_path`, in a thread until :meth:`close`."""

    def __init__(self, chain_pem: Path, key_pem_path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ctx = _context(chain_pem, key_pem_path)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True):
                    self.handshakes += 1
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> TLSServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def build_cert_tree(root: Path) -> CertTree:
    """PEM (a chain, a key beside it), DER, PKCS#12 without a password, a JKS made by keytool, an OS
    trust bundle, a broken PEM, a symbolic link, and a PEM outside the known locations, under
    `root`; and what a scan must find there."""
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


def _main(argv: list[str]) -> None:
    """``serve CHAIN KEY PORT [HOST]``: serve until killed (prints "ready PORT" once listening)."""
    assert argv[0] == "serve", argv
    host = argv[4] if len(argv) > 4 else "127.0.0.1"
    srv = TLSServer(Path(argv[1]), Path(argv[2]), host=host, port=int(argv[3]))
    print(f"ready {srv.port}", flush=True)
    srv._thread.join()


if __name__ == "__main__":
    _main(sys.argv[1:])
