"""Image signatures made in the test run, in the formats cosign and sigstore write them.

* :func:`payload`: cosign's simple-signing payload for an image digest; :func:`sign`: an ECDSA
  P-256/SHA-256 signature, base64 (what ``cosign sign --output-signature`` writes);
* :func:`message_bundle` and :func:`dsse_bundle`: sigstore bundles (``messageSignature`` over a
  digest; ``dsseEnvelope`` of an in-toto statement), signed by a key (``publicKey`` hint) or by a
  certificate (``x509CertificateChain`` for v0.1/v0.2, ``certificate`` for v0.3), with a
  transparency-log entry whose signed entry timestamp a "Rekor" key made;
* :func:`fulcio`: a CA and a short-lived code-signing certificate naming an email and an OIDC
  issuer (Fulcio's extension 1.3.6.1.4.1.57264.1.8), as Fulcio issues them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

MEDIA = {
    "0.1": "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "0.2": "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "0.3": "application/vnd.dev.sigstore.bundle.v0.3+json",
}
ISSUER_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key (cosign's default)."""
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(k: ec.EllipticCurvePrivateKey) -> bytes:
    """The public key as PEM (``cosign.pub``)."""
    return k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def payload(digest: str, reference: str = "registry.example.com/team/app") -> bytes:
    """cosign's simple-signing payload of `digest` (``sha256:<hex>``)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": {"creator": "tests"},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def sign(k: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """The base64 ECDSA P-256 SHA-256 signature of `data`."""
    return base64.b64encode(k.sign(data, ec.ECDSA(hashes.SHA256())))


def write_cosign(store: Path, digest: str, k: ec.EllipticCurvePrivateKey, name: str = "") -> Path:
    """``sha256-<hex>[.name].sig`` and ``.payload`` in `store`; the .sig path."""
    stem = digest.replace(":", "-") + (f".{name}" if name else "")
    data = payload(digest)
    (store / f"{stem}.payload").write_bytes(data)
    sig = store / f"{stem}.sig"
    sig.write_bytes(sign(k, data))
    return sig


def fulcio(
    email: str = "ci@example.com", issuer: str = "https://accounts.example.com", *, minutes: int = 10
) -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey, dt.datetime]:
    """(root, leaf, the leaf's key, the leaf's notBefore): a Fulcio-like CA and a code-signing
    certificate valid `minutes` from a time 2 hours ago."""
    root_key = key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-fulcio-root")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = key()
    start = now - dt.timedelta(hours=2)
    issuer_der = b"\x0c" + bytes([len(issuer)]) + issuer.encode()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(minutes=minutes))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.UnrecognizedExtension(ISSUER_OID, issuer_der), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return root, leaf, leaf_key, start


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def tlog_entry(rekor: ec.EllipticCurvePrivateKey, when: dt.datetime, body: bytes = b"{}") -> dict[str, Any]:
    """A transparency-log entry integrated at `when`, its signed entry timestamp by `rekor`."""
    log_id = hashlib.sha256(public_pem(rekor)).digest()
    body_b64 = b64(body)
    t = int(when.timestamp())
    canon = json.dumps(
        {"body": body_b64, "integratedTime": t, "logID": log_id.hex(), "logIndex": 42},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return {
        "logIndex": "42",
        "logId": {"keyId": b64(log_id)},
        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "integratedTime": str(t),
        "inclusionPromise": {"signedEntryTimestamp": b64(rekor.sign(canon, ec.ECDSA(hashes.SHA256())))},
        "canonicalizedBody": body_b64,
    }


def _material(version: str, cert: x509.Certificate | None, entries: list[dict[str, Any]]) -> dict[str, Any]:
    vm: dict[str, Any] = {"tlogEntries": entries}
    if cert is None:
        vm["publicKey"] = {"hint": "test-key"}
    elif version == "0.3":
        vm["certificate"] = {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}
    else:
        vm["x509CertificateChain"] = {
            "certificates": [{"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}]
        }
    return vm


def message_bundle(
    k: ec.EllipticCurvePrivateKey,
    digest: str,
    *,
    version: str = "0.3",
    cert: x509.Certificate | None = None,
    entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A bundle whose messageSignature signs the image digest itself."""
    raw = bytes.fromhex(digest.removeprefix("sha256:"))
    sig = k.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
    return {
        "mediaType": MEDIA[version],
        "verificationMaterial": _material(version, cert, entries or []),
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(raw)},
            "signature": b64(sig),
        },
    }


def dsse_bundle(
    k: ec.EllipticCurvePrivateKey,
    digest: str,
    *,
    version: str = "0.2",
    cert: x509.Certificate | None = None,
    entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A bundle whose DSSE envelope holds an in-toto statement about the image."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "registry.example.com/team/app", "digest": {"sha256": digest.removeprefix("sha256:")}}
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    }
    body = json.dumps(statement).encode()
    ptype = "application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(body), body)
    sig = k.sign(pae, ec.ECDSA(hashes.SHA256()))
    return {
        "mediaType": MEDIA[version],
        "verificationMaterial": _material(version, cert, entries or []),
        "dsseEnvelope": {
            "payload": b64(body),
            "payloadType": ptype,
            "signatures": [{"sig": b64(sig), "keyid": ""}],
        },
    }


def write_bundle(store: Path, digest: str, bundle: dict[str, Any], name: str = "") -> Path:
    path = store / (digest.replace(":", "-") + (f".{name}" if name else "") + ".bundle")
    path.write_text(json.dumps(bundle))
    return path
