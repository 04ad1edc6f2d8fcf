"""The node's signing key: Ed25519, made on first use, kept in ``DATA_DIR/keys/`` (0600).

Audit checkpoints and evidence manifests are signed with it, so that whoever holds the public key
(``signing.pub``, or the ``key_id`` recorded beside each signature) can tell a record Stockade
wrote from one written afterwards by someone with access to the files but not to the key. The
private key never leaves the node; keep ``signing.pub`` somewhere the node cannot write (a SIEM,
a ticket) to verify against later.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stockade.errors import StockadeError

__all__ = ["KEY_DIR", "NodeKey", "key_id_of", "load_public_key", "verify_signature"]

#: the directory under the data directory holding the key pair
KEY_DIR = "keys"
_PRIVATE = "signing.key"
_PUBLIC = "signing.pub"


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A public key from a PEM file (``signing.pub``)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as e:
        raise StockadeError(f"cannot read the public key {path}: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise StockadeError(f"{path} is not an Ed25519 public key")
    return key


def verify_signature(key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` (base64) is `key`'s signature of `data`."""
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class NodeKey:
    """The node's key pair."""

    private: Ed25519PrivateKey
    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        """The public key's short name (:func:`key_id_of`)."""
        return key_id_of(self.public)

    def sign(self, data: bytes) -> str:
        """The signature of `data`, base64."""
        return base64.b64encode(self.private.sign(data)).decode()

    def verify(self, data: bytes, signature_b64: str) -> bool:
        """Whether `signature_b64` is this key's signature of `data`."""
        return verify_signature(self.public, data, signature_b64)

    def public_pem(self) -> bytes:
        """The public key as PEM."""
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def load_or_create(cls, data_dir: str | Path, *, create: bool = True) -> NodeKey:
        """The key in ``data_dir/keys``, made (0600, atomically) when there is none and `create`."""
        d = Path(data_dir) / KEY_DIR
        priv = d / _PRIVATE
        try:
            if priv.exists():
                key = serialization.load_pem_private_key(priv.read_bytes(), password=None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise StockadeError(f"{priv} is not an Ed25519 private key")
                return cls(key, key.public_key())
            if not create:
                raise StockadeError(f"no signing key at {priv}")
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            tmp = d / f".{_PRIVATE}.{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, priv)  # fails if another process made one meanwhile: use that one
            except FileExistsError:
                os.unlink(tmp)
                return cls.load_or_create(data_dir, create=False)
            os.unlink(tmp)
            node = cls(key, key.public_key())
            (d / _PUBLIC).write_bytes(node.public_pem())
            return node
        except (OSError, ValueError) as e:
            raise StockadeError(f"cannot load or create the signing key in {d}: {e}") from e
