"""Certificates out of Java keystores (JKS and JCEKS), without the keystore's password.

A JKS or JCEKS file keeps its certificates in clear (only private and secret keys are encrypted),
so they are read without a password. The layout (big-endian)::

    magic u4 (FEEDFEED: JKS, CECECECE: JCEKS)  version u4 (1, 2)  count u4
    entry:  tag u4 (1 private key, 2 trusted certificate, 3 secret key: JCEKS only)
            alias (u2 length + modified UTF-8)  timestamp u8 (ms)
            tag 1: key (u4 length + bytes), chain length u4, each certificate
            tag 2: one certificate
            certificate: (version 2: type, u2 length + UTF-8) u4 length + DER bytes
    SHA-1 over (password as UTF-16BE + "Mighty Aphrodite" + everything before it)

The trailing digest is checked with Java's default password ``changeit`` and with none
(:attr:`Keystore.integrity` says which matched, or that neither did: the certificates are read all
the same). A JCEKS secret-key entry is a serialized Java object that cannot be skipped without a
Java deserializer: the entries after it are not read, and :attr:`Keystore.note` says so.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

__all__ = ["JCEKS_MAGIC", "JKS_MAGIC", "Keystore", "is_java_keystore", "read_keystore"]

JKS_MAGIC = 0xFEEDFEED
JCEKS_MAGIC = 0xCECECECE
#: the passwords the integrity digest is checked with ("" is none)
PASSWORDS = ("changeit", "")
_WHITENER = b"Mighty Aphrodite"


@dataclass(slots=True)
class Keystore:
    """What a keystore holds: (alias, DER certificate) pairs, chains in order (leaf first)."""

    kind: str
    certs: list[tuple[str, bytes]] = field(default_factory=list)
    #: "changeit", "none" (verified with that password), or "unverified"
    integrity: str = "unverified"
    note: str = ""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u2(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u4(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def utf(self) -> str:
        return self.take(self.u2()).decode("utf-8", errors="replace")


def is_java_keystore(data: bytes) -> bool:
    """Whether `data` starts like a JKS or JCEKS keystore."""
    return len(data) >= 8 and struct.unpack(">I", data[:4])[0] in (JKS_MAGIC, JCEKS_MAGIC)


def _integrity(data: bytes, end: int) -> str:
    digest = data[end : end + 20]
    if len(digest) != 20:
        return "unverified"
    for pw in PASSWORDS:
        if hashlib.sha1(pw.encode("utf-16-be") + _WHITENER + data[:end]).digest() == digest:
            return pw or "none"
    return "unverified"


def read_keystore(data: bytes) -> Keystore:
    """The certificates of a JKS or JCEKS keystore; ValueError when it is not one or is damaged."""
    r = _Reader(data)
    magic = r.u4()
    if magic not in (JKS_MAGIC, JCEKS_MAGIC):
        raise ValueError("not a Java keystore (bad magic)")
    ks = Keystore("jks" if magic == JKS_MAGIC else "jceks")
    version = r.u4()
    if version not in (1, 2):
        raise ValueError(f"unknown keystore version {version}")
    count = r.u4()

    def cert() -> bytes:
        if version == 2:
            r.utf()  # the certificate type, X.509
        return r.take(r.u4())

    for _ in range(count):
        tag = r.u4()
        alias = r.utf()
        r.take(8)
        if tag == 1:
            r.take(r.u4())  # the encrypted private key
            for i in range(r.u4()):
                ks.certs.append((f"{alias}[{i}]" if i else alias, cert()))
        elif tag == 2:
            ks.certs.append((alias, cert()))
        elif tag == 3 and ks.kind == "jceks":
            ks.note = f"secret key entry {alias!r}: the entries after it are not read"
            return ks
        else:
            raise ValueError(f"unknown entry tag {tag} at byte {r.pos}")
    ks.integrity = _integrity(data, r.pos)
    return ks
