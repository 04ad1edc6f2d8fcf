"""One certificate, where it was found, and the facts a user asks of it.

:func:`describe` reads a :class:`cryptography.x509.Certificate` into a :class:`CertRecord`: subject,
SANs, issuer, serial, key type and size, validity, SHA-256 fingerprint, self-signed, CA flag, plus
where it was found (a file and its format, or a port where it was served; the container it is in).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

__all__ = ["CertRecord", "Place", "describe", "key_facts"]


@dataclass(frozen=True, slots=True)
class Place:
    """Where a certificate was found: a file (``source`` "file") or a listening port ("served")."""

    source: str
    #: the file's path inside its root (the container's view), or ``tcp://127.0.0.1:PORT``
    location: str
    #: pem, der, pkcs12, jks, jceks, pkcs7, or tls (served)
    format: str
    #: the alias in a keystore, the certificate's index in a bundle or chain (0: first)
    entry: str = "0"
    #: the container's full id ("" on the host)
    container_id: str = ""
    container_name: str | None = None
    #: part of a trust store of the OS or a language runtime (counted, never alerted one by one)
    trust_store: bool = False


@dataclass(slots=True)
class CertRecord:
    """A certificate's facts and its place (module docstring)."""

    subject: str
    issuer: str
    sans: list[str]
    serial: str
    key_type: str
    key_size: int | None
    not_before: str
    not_after: str
    not_after_ts: float
    sha256: str
    self_signed: bool
    ca: bool
    place: Place
    extra: dict[str, Any] = field(default_factory=dict)

    def days_left(self, now: float) -> float:
        """Days until it expires (negative: expired that long ago)."""
        return (self.not_after_ts - now) / 86400.0

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The JSON form (the API's item): the facts, the place flattened, ``days_left`` at `now`."""
        d = {k: v for k, v in asdict(self).items() if k not in ("place", "extra", "not_after_ts")}
        d.update(asdict(self.place))
        d.update(self.extra)
        if now is not None:
            d["days_left"] = round(self.days_left(now), 2)
            d["expired"] = self.not_after_ts <= now
        return d


def key_facts(cert: x509.Certificate) -> tuple[str, int | None]:
    """(type, size in bits) of the certificate's public key: RSA 2048, EC (secp256r1) 256, ..."""
    try:
        key = cert.public_key()
    except (ValueError, TypeError) as e:  # an algorithm cryptography does not know
        return f"unknown ({e})", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC ({key.curve.name})", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    out: list[str] = []
    for name in ext:
        if isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value}")
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            out.append(f"email:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append(f"URI:{name.value}")
        else:
            out.append(f"{type(name).__name__}:{name.value}")
    return out


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _name(n: x509.Name) -> str:
    try:
        return n.rfc4514_string()
    except ValueError:
        return repr(n)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(cert: x509.Certificate, place: Place) -> CertRecord:
    """The record of `cert` found at `place`."""
    key_type, key_size = key_facts(cert)
    after = cert.not_valid_after_utc
    return CertRecord(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        sans=_sans(cert),
        serial=format(cert.serial_number, "x"),
        key_type=key_type,
        key_size=key_size,
        not_before=_iso(cert.not_valid_before_utc),
        not_after=_iso(after),
        not_after_ts=after.timestamp(),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        self_signed=_self_signed(cert),
        ca=_is_ca(cert),
        place=place,
    )
