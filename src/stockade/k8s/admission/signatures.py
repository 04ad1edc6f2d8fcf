"""Image signatures, verified offline: cosign key-based signatures and sigstore bundles.

The store is a directory, one image manifest digest per file name prefix (what ``cosign`` writes
with ``--output-signature``/``--output-payload``, or ``--bundle``), read into memory outside the
request path::

    sha256-<hex>.sig        base64 signature over the payload beside it
    sha256-<hex>.payload    cosign's simple-signing JSON ({"critical": {"identity":
                            {"docker-reference"}, "image": {"docker-manifest-digest"}, "type":
                            "cosign container image signature"}, "optional": ...})
    sha256-<hex>.bundle     a sigstore bundle (JSON; media types v0.1, v0.2, v0.3)

Several signatures of one image: ``sha256-<hex>.<anything>.sig`` (+ the ``.payload`` of the same
name) and ``sha256-<hex>.<anything>.bundle``.

What is verified (docs/k8s-admission.md says the same):

* a cosign signature: the signature over the payload bytes by one of the keys (ECDSA P-256 or
  P-384 with SHA-256, RSA PKCS#1 v1.5 with SHA-256, Ed25519), the payload's ``type`` and that its
  ``docker-manifest-digest`` is the image's digest;
* a bundle's ``messageSignature``: the signature over the message digest, which is the image's
  digest, or the SHA-256 of the simple-signing payload beside it, naming the image's digest;
* a bundle's ``dsseEnvelope``: the signature over the DSSE pre-authentication encoding of an
  in-toto statement with a subject whose sha256 digest is the image's;
* the signer: a key of the rule (``publicKey`` bundles, cosign signatures), or with ``keyless`` a
  certificate (``x509CertificateChain`` or ``certificate``) chained, signature by signature, to
  one of the roots, with the code-signing usage, valid at the signing time, and naming one of the
  identities (SAN email or URI; Fulcio issuer extension);
* the signing time: with ``rekorKeys``, a transparency-log entry's signed entry timestamp
  (inclusion promise) must verify with one of them and gives the time; without, the entry's
  integrated time is taken unverified (and the present time when there is no entry).

Not verified offline: Merkle inclusion proofs and checkpoints, that the log entry's body is this
signature, certificate revocation, RFC 3161 timestamps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "PublicKey",
    "Signature",
    "Verifier",
    "load_certificates",
    "load_public_keys",
    "load_store",
]

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)
COSIGN_TYPE = "cosign container image signature"
_NAME = re.compile(r"^sha256-([0-9a-f]{64})(\..+)?\.(sig|bundle)$")
_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of the store: a cosign signature and its payload, or a bundle."""

    source: str
    signature: bytes | None = None
    payload: bytes | None = None
    bundle: Mapping[str, Any] | None = None


def load_store(directory: str | Path) -> dict[str, list[Signature]]:
    """The signatures of `directory` by image digest (``sha256:<hex>``); an OSError when it cannot
    be read. A malformed file is kept as a signature that fails to verify (saying why)."""
    out: dict[str, list[Signature]] = {}
    for path in sorted(Path(directory).iterdir()):
        m = _NAME.match(path.name)
        if m is None or not path.is_file():
            continue
        digest = f"sha256:{m[1]}"
        raw = path.read_bytes()
        if m[3] == "bundle":
            try:
                bundle = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bundle = {"error": "not JSON"}
            if not isinstance(bundle, dict):
                bundle = {"error": "not an object"}
            sig = Signature(str(path), payload=_beside(path), bundle=bundle)
        else:
            sig = Signature(str(path), signature=_b64(raw.strip()), payload=_beside(path))
        out.setdefault(digest, []).append(sig)
    return out


def _beside(path: Path) -> bytes | None:
    payload = path.with_suffix(".payload")
    return payload.read_bytes() if payload.is_file() else None


def _b64(data: bytes | str | None) -> bytes | None:
    if data is None:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def load_public_keys(texts: Iterable[bytes]) -> tuple[PublicKey, ...]:
    """PEM public keys (a ValueError for anything else)."""
    out: list[PublicKey] = []
    for t in texts:
        key = serialization.load_pem_public_key(t)
        if not isinstance(key, PublicKey):
            raise ValueError(f"unsupported public key type {type(key).__name__}")
        out.append(key)
    return tuple(out)


def load_certificates(texts: Iterable[bytes]) -> tuple[x509.Certificate, ...]:
    """Every certificate of PEM texts (a ValueError when one holds none)."""
    out: list[x509.Certificate] = []
    for t in texts:
        out.extend(x509.load_pem_x509_certificates(t))
    return tuple(out)


def _verifies(key: Any, signature: bytes, data: bytes, *, prehashed: bool = False) -> bool:
    algo: Any = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algo))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algo)
        elif isinstance(key, ed25519.Ed25519PublicKey) and not prehashed:
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _payload_digest(payload: bytes | None) -> str | None:
    """The image digest a simple-signing payload signs (None when it is not one)."""
    if payload is None:
        return None
    try:
        crit = orjson.loads(payload)["critical"]
        if crit["type"] != COSIGN_TYPE:
            return None
        return str(crit["image"]["docker-manifest-digest"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _der_utf8(raw: bytes) -> str:
    """A DER UTF8String's text (Fulcio's v2 extensions), or the bytes as text (v1)."""
    if len(raw) >= 2 and raw[0] == 0x0C:
        n, start = raw[1], 2
        if n & 0x80:
            size = n & 0x7F
            n, start = int.from_bytes(raw[2 : 2 + size], "big"), 2 + size
        return raw[start : start + n].decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def _cert_issuer(cert: x509.Certificate) -> str | None:
    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        if isinstance(ext, x509.UnrecognizedExtension):
            return _der_utf8(ext.value)
    return None


def _cert_subjects(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.RFC822Name)} | {
        str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)
    }


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Verifier:
    """The signers one signature rule accepts: keys, and/or certificates chained to `roots`
    naming one of `identities` ((issuer, subject) pairs; None is any), with the log's keys."""

    keys: tuple[PublicKey, ...] = ()
    roots: tuple[x509.Certificate, ...] = ()
    identities: tuple[tuple[str | None, str | None], ...] = ()
    rekor_keys: tuple[PublicKey, ...] = ()
    keyless: bool = False
    _root_ders: frozenset[bytes] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_root_ders", frozenset(r.public_bytes(serialization.Encoding.DER) for r in self.roots)
        )

    def check(self, digest: str, sig: Signature) -> str | None:
        """None when `sig` is a valid signature of the image `digest` by an accepted signer;
        else why not."""
        if sig.bundle is not None:
            return self._bundle(digest, sig)
        if sig.signature is None:
            return f"{sig.source}: the signature is not base64"
        if sig.payload is None:
            return f"{sig.source}: no payload beside the signature"
        if not any(_verifies(k, sig.signature, sig.payload) for k in self.keys):
            return f"{sig.source}: the signature does not verify with the policy's keys"
        if _payload_digest(sig.payload) != digest:
            return f"{sig.source}: the payload does not sign {digest}"
        return None

    # -- bundles ---------------------------------------------------------------------------------
    def _bundle(self, digest: str, sig: Signature) -> str | None:
        b = sig.bundle or {}
        if b.get("mediaType") not in BUNDLE_MEDIA_TYPES:
            return f"{sig.source}: not a sigstore bundle (mediaType {b.get('mediaType')!r})"
        try:
            keys, why = self._signers(b)
        except (KeyError, TypeError, ValueError) as e:
            return f"{sig.source}: unreadable verification material ({type(e).__name__}: {e})"
        if why is not None:
            return f"{sig.source}: {why}"
        try:
            if "messageSignature" in b:
                why = self._message_signature(digest, b["messageSignature"], keys, sig.payload)
            elif "dsseEnvelope" in b:
                why = self._dsse(digest, b["dsseEnvelope"], keys)
            else:
                why = "neither messageSignature nor dsseEnvelope"
        except (KeyError, TypeError, ValueError) as e:
            why = f"malformed content ({type(e).__name__}: {e})"
        return None if why is None else f"{sig.source}: {why}"

    def _signers(self, b: Mapping[str, Any]) -> tuple[tuple[PublicKey, ...], str | None]:
        vm = b["verificationMaterial"]
        if "publicKey" in vm:
            return self.keys, None if self.keys else "signed by a key, and the rule names none"
        ders = (
            [c["rawBytes"] for c in vm["x509CertificateChain"]["certificates"]]
            if "x509CertificateChain" in vm
            else [vm["certificate"]["rawBytes"]]
        )
        certs = [x509.load_der_x509_certificate(base64.b64decode(d)) for d in ders]
        if not self.keyless:
            return (), "signed by a certificate, and the rule is not keyless"
        when, why = self._signing_time(vm.get("tlogEntries") or [])
        if why is None:
            why = self._chain(certs, when)
        if why is not None:
            return (), why
        key = certs[0].public_key()
        return ((key,) if isinstance(key, PublicKey) else ()), None

    def _signing_time(self, entries: Sequence[Mapping[str, Any]]) -> tuple[datetime, str | None]:
        for e in entries:
            when = datetime.fromtimestamp(int(e["integratedTime"]), UTC)
            if not self.rekor_keys:
                return when, None
            set_b64 = (e.get("inclusionPromise") or {}).get("signedEntryTimestamp")
            promise = _b64(set_b64)
            if promise is None:
                continue
            payload = _canonical(
                {
                    "body": e["canonicalizedBody"],
                    "integratedTime": int(e["integratedTime"]),
                    "logID": base64.b64decode(e["logId"]["keyId"]).hex(),
                    "logIndex": int(e["logIndex"]),
                }
            )
            if any(_verifies(k, promise, payload) for k in self.rekor_keys):
                return when, None
        if self.rekor_keys:
            return datetime.now(UTC), "no transparency-log entry verifies with the rekor keys"
        return datetime.now(UTC), None

    def _chain(self, certs: list[x509.Certificate], when: datetime) -> str | None:
        leaf = certs[0]
        if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
            return f"the certificate was not valid at the signing time {when.isoformat()}"
        try:
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return "the certificate has no extended key usage (code signing needed)"
        if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            return "the certificate is not for code signing"
        pool = [*certs[1:], *self.roots]
        current = leaf
        for _ in range(8):
            if current.public_bytes(serialization.Encoding.DER) in self._root_ders:
                break
            issuer = next((c for c in pool if c.subject == current.issuer and _issued(current, c)), None)
            if issuer is None:
                return "the certificate does not chain to the keyless roots"
            current = issuer
        else:
            return "the certificate chain is too long"
        return self._identity(leaf)

    def _identity(self, leaf: x509.Certificate) -> str | None:
        if not self.identities:
            return None
        issuer, subjects = _cert_issuer(leaf), _cert_subjects(leaf)
        for want_issuer, want_subject in self.identities:
            if (want_issuer is None or want_issuer == issuer) and (
                want_subject is None or want_subject in subjects
            ):
                return None
        return f"the signer {sorted(subjects)} (issuer {issuer}) is none of the policy's identities"

    def _message_signature(
        self, digest: str, ms: Mapping[str, Any], keys: Sequence[PublicKey], payload: bytes | None
    ) -> str | None:
        md = ms["messageDigest"]
        if md.get("algorithm") != "SHA2_256":
            return f"message digest algorithm {md.get('algorithm')!r} (SHA2_256 expected)"
        signed = base64.b64decode(md["digest"])
        signature = base64.b64decode(ms["signature"])
        if not any(_verifies(k, signature, signed, prehashed=True) for k in keys):
            return "the signature does not verify"
        if signed.hex() == digest.removeprefix("sha256:"):
            return None
        if (
            payload is not None
            and hashlib.sha256(payload).digest() == signed
            and _payload_digest(payload) == digest
        ):
            return None
        return f"the bundle signs another artifact than {digest}"

    def _dsse(self, digest: str, env: Mapping[str, Any], keys: Sequence[PublicKey]) -> str | None:
        payload = base64.b64decode(env["payload"])
        pae = _pae(str(env["payloadType"]), payload)
        sigs = [base64.b64decode(s["sig"]) for s in env["signatures"]]
        if not any(_verifies(k, s, pae) for k in keys for s in sigs):
            return "the DSSE signature does not verify"
        statement = orjson.loads(payload)
        if not str(statement.get("_type", "")).startswith("https://in-toto.io/Statement/"):
            return "the DSSE payload is not an in-toto statement"
        hexd = digest.removeprefix("sha256:")
        if not any((s.get("digest") or {}).get("sha256") == hexd for s in statement.get("subject") or []):
            return f"the statement's subjects do not include {digest}"
        return None


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
