"""The webhook's certificates: given files, or a CA and a serving certificate made here.

:func:`ensure_tls_dir` writes ``ca.crt``, ``ca.key``, ``tls.crt`` and ``tls.key`` (EC P-256;
keys mode 0600) into a directory, for the service's DNS names (``NAME``, ``NAME.NS``,
``NAME.NS.svc``, ``NAME.NS.svc.cluster.local``) and any extra names or addresses; files already
there are kept while the serving certificate is valid for 30 more days and names them all (else
it is made again, signed by the same CA while that is valid for 30 more days).
``ca.crt`` is the caBundle of the ValidatingWebhookConfiguration.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ensure_tls_dir", "server_context", "service_names"]

_CA_DAYS = 3650
_LEAF_DAYS = 365
_RENEW = dt.timedelta(days=30)


def service_names(service: str) -> list[str]:
    """The DNS names kube-apiserver may use for the service ``NS/NAME``."""
    ns, _, name = service.partition("/")
    if not ns or not name:
        raise ValueError(f"--service {service!r}: give NAMESPACE/NAME")
    return [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


def _builder(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _current(directory: Path, names: Sequence[str]) -> bool:
    try:
        leaf = x509.load_pem_x509_certificate((directory / "tls.crt").read_bytes())
        x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        if not (directory / "tls.key").is_file():
            return False
    except (OSError, ValueError):
        return False
    if leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW:
        return False
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }
    return set(names) <= have


def _ca(d: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The directory's CA, kept while valid for 30 more days (the caBundle registered stays
    right when only the serving certificate is made again); a new one else."""
    try:
        ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), None)
        if (
            isinstance(key, ec.EllipticCurvePrivateKey)
            and ca.not_valid_after_utc - dt.datetime.now(dt.UTC) > _RENEW
        ):
            return ca, key
    except (OSError, ValueError, TypeError):
        pass
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("stockade-admission-ca", "stockade-admission-ca", key, _CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    _write(d / "ca.key", key.private_bytes(pem, pkcs8, serialization.NoEncryption()), private=True)
    _write(d / "ca.crt", ca.public_bytes(pem))
    return ca, key


def ensure_tls_dir(directory: str | Path, names: Sequence[str]) -> Path:
    """The directory, holding a CA and a serving certificate for `names` (made when missing,
    expiring within 30 days or not naming them all; the CA is kept while valid)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if _current(d, names):
        return d
    ca, ca_key = _ca(d)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        _builder(names[0], "stockade-admission-ca", key, _LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    _write(d / "tls.key", key.private_bytes(pem, pkcs8, none), private=True)
    _write(d / "tls.crt", leaf.public_bytes(pem) + ca.public_bytes(pem))
    return d


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving `cert` (a chain, leaf first) with `key`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])  # kube-apiserver offers h2 too: HTTP/1.1 keep-alive here
    return ctx
