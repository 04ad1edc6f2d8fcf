"""Reading the certificates of one file, whatever its format: PEM (bundles of many, PKCS#7 in PEM),
DER, PKCS#12 (without a password, or Java's ``changeit``), JKS and JCEKS (:mod:`stockade.certs.jks`).

:func:`read_certificates` gives ``(format, [(entry, certificate)], problems)``: one bad block of a
PEM bundle is a problem of that block and the others are still read; a file with nothing readable
is a :class:`~stockade.certs.interface.CertError` naming it and why.
"""

from __future__ import annotations

import re
import warnings

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.utils import CryptographyDeprecationWarning

from stockade.certs.interface import CertError, NoCertificate
from stockade.certs.jks import is_java_keystore, read_keystore

__all__ = ["PKCS12_PASSWORDS", "Parsed", "read_certificates"]

# old CA certificates with a negative serial number still load (a warning each, for every scan)
warnings.filterwarnings(
    "ignore", message="Parsed a serial number which wasn't positive", category=CryptographyDeprecationWarning
)

#: the passwords a PKCS#12 file is opened with: none, empty, and Java's default
PKCS12_PASSWORDS: tuple[bytes | None, ...] = (None, b"", b"changeit")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)
_PEM_CERT_TYPES = (b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE")

#: (format, [(entry, certificate)], problems)
Parsed = tuple[str, list[tuple[str, x509.Certificate]], list[str]]


def _pem(data: bytes, path: str) -> Parsed:
    certs: list[tuple[str, x509.Certificate]] = []
    problems: list[str] = []
    blocks = 0
    for i, m in enumerate(_PEM_BLOCK.finditer(data)):
        kind = m.group(1)
        if kind == b"PKCS7":
            blocks += 1
            try:
                for c in pkcs7.load_pem_pkcs7_certificates(m.group(0)):
                    certs.append((str(len(certs)), c))
            except ValueError as e:
                problems.append(f"{path}: PEM block {i} (PKCS7): {e}")
            continue
        if kind not in _PEM_CERT_TYPES:
            continue  # keys, CSRs, parameters: not certificates
        blocks += 1
        try:
            if kind == b"TRUSTED CERTIFICATE":  # OpenSSL's: the DER certificate, then trust settings
                der = _pem_body(m.group(2))
                certs.append((str(len(certs)), x509.load_der_x509_certificate(_first_der(der))))
            else:
                block = b"-----BEGIN CERTIFICATE-----\n" + m.group(2) + b"-----END CERTIFICATE-----\n"
                certs.append((str(len(certs)), x509.load_pem_x509_certificate(block)))
        except ValueError as e:
            problems.append(f"{path}: PEM certificate block {i}: {e}")
    if not blocks:
        raise NoCertificate(f"{path}: PEM without a certificate (keys or other blocks only)")
    return "pem", certs, problems


def _pem_body(body: bytes) -> bytes:
    import base64

    return base64.b64decode(b"".join(line for line in body.split() if b":" not in line))


def _first_der(der: bytes) -> bytes:
    """The first DER element of `der` (a SEQUENCE with its length), trailing data dropped."""
    if len(der) < 2 or der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    n = der[1]
    if n < 0x80:
        return der[: 2 + n]
    k = n & 0x7F
    return der[: 2 + k + int.from_bytes(der[2 : 2 + k], "big")]


def _pkcs12(data: bytes) -> Parsed | None:
    for pw in PKCS12_PASSWORDS:
        try:
            p12 = pkcs12.load_pkcs12(data, pw)
        except ValueError:
            continue
        certs: list[tuple[str, x509.Certificate]] = []
        if p12.cert is not None:
            name = p12.cert.friendly_name.decode("utf-8", "replace") if p12.cert.friendly_name else "0"
            certs.append((name, p12.cert.certificate))
        for i, c in enumerate(p12.additional_certs):
            name = c.friendly_name.decode("utf-8", "replace") if c.friendly_name else str(i + 1)
            certs.append((name, c.certificate))
        return "pkcs12", certs, []
    return None


def read_certificates(data: bytes, path: str) -> Parsed:
    """The certificates of one file's bytes (module docstring); CertError when none can be read."""
    if not data.strip():
        raise NoCertificate(f"{path}: empty")
    if b"-----BEGIN " in data:  # also after text (openssl x509 -text output before the block)
        return _pem(data, path)
    if is_java_keystore(data):
        try:
            ks = read_keystore(data)
        except ValueError as e:
            raise CertError(f"{path}: damaged Java keystore: {e}") from e
        certs: list[tuple[str, x509.Certificate]] = []
        problems = [f"{path}: {ks.note}"] if ks.note else []
        for alias, der in ks.certs:
            try:
                certs.append((alias, x509.load_der_x509_certificate(der)))
            except ValueError as e:
                problems.append(f"{path}: keystore entry {alias!r}: {e}")
        return ks.kind, certs, problems
    if not data[:1] == b"\x30":
        raise CertError(f"{path}: neither PEM, DER, PKCS#12 nor a Java keystore")
    try:
        return "der", [("0", x509.load_der_x509_certificate(data))], []
    except ValueError:
        pass
    try:
        return "pkcs7", [(str(i), c) for i, c in enumerate(pkcs7.load_der_pkcs7_certificates(data))], []
    except ValueError:
        pass
    p12 = _pkcs12(data)
    if p12 is not None:
        return p12
    raise CertError(
        f"{path}: DER data that is no certificate, PKCS#7, or PKCS#12 without a password "
        "(a password-protected PKCS#12 is not read)"
    )
