"""Offline verification of cosign signatures and sigstore bundles (v0.1-0.3): a good signature
passes; a tampered payload, another image's digest, a wrong key, a certificate from another CA,
another identity, an expired certificate or a forged log timestamp fail, each saying why."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import signing
from stockade.k8s.admission.signatures import Signature, Verifier, load_public_keys, load_store

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
KEY = signing.key()
WRONG = signing.key()
REKOR = signing.key()
ROOT, LEAF, LEAF_KEY, SIGNED_AT = signing.fulcio()
OTHER_ROOT, *_ = signing.fulcio()


def _keyed(*keys: object) -> Verifier:
    return Verifier(keys=load_public_keys(signing.public_pem(k) for k in keys))  # type: ignore[arg-type]


def _keyless(**kw: object) -> Verifier:
    return Verifier(keyless=True, roots=(ROOT,), **kw)  # type: ignore[arg-type]


def test_cosign_signature_from_the_store(tmp_path: Path) -> None:
    signing.write_cosign(tmp_path, DIGEST, KEY)
    store = load_store(tmp_path)
    (sig,) = store[DIGEST]
    assert _keyed(KEY).check(DIGEST, sig) is None
    assert "does not verify" in (_keyed(WRONG).check(DIGEST, sig) or "")
    # the signature is good, but over a payload naming this digest, not OTHER
    assert "does not sign" in (_keyed(KEY).check(OTHER, sig) or "")


def test_tampered_payload_fails(tmp_path: Path) -> None:
    signing.write_cosign(tmp_path, DIGEST, KEY)
    p = tmp_path / (DIGEST.replace(":", "-") + ".payload")
    p.write_bytes(p.read_bytes().replace(b"tests", b"evil!"))
    (sig,) = load_store(tmp_path)[DIGEST]
    assert "does not verify" in (_keyed(KEY).check(DIGEST, sig) or "")


def test_payload_of_another_type_fails() -> None:
    data = signing.payload(DIGEST).replace(b"cosign container image signature", b"something else")
    sig = Signature("x.sig", signature=base64.b64decode(signing.sign(KEY, data)), payload=data)
    assert "does not sign" in (_keyed(KEY).check(DIGEST, sig) or "")


def test_store_layout(tmp_path: Path) -> None:
    signing.write_cosign(tmp_path, DIGEST, KEY)
    signing.write_cosign(tmp_path, DIGEST, WRONG, name="second")
    signing.write_bundle(tmp_path, OTHER, signing.message_bundle(KEY, OTHER))
    (tmp_path / "README").write_text("not a signature")
    (tmp_path / "sha256-short.sig").write_text("x")
    store = load_store(tmp_path)
    assert sorted(store) == sorted([DIGEST, OTHER])
    assert len(store[DIGEST]) == 2
    assert store[OTHER][0].bundle is not None


@pytest.mark.parametrize("version", ["0.1", "0.2", "0.3"])
def test_bundles_with_a_key(version: str) -> None:
    v = _keyed(KEY)
    for make in (signing.message_bundle, signing.dsse_bundle):
        good = Signature("b", bundle=make(KEY, DIGEST, version=version))
        assert v.check(DIGEST, good) is None, make.__name__
        assert v.check(OTHER, good) is not None, make.__name__
        assert "does not verify" in (_keyed(WRONG).check(DIGEST, good) or "")


def test_dsse_statement_tampered() -> None:
    b = signing.dsse_bundle(KEY, DIGEST)
    body = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    body["subject"][0]["digest"]["sha256"] = OTHER.removeprefix("sha256:")
    b["dsseEnvelope"]["payload"] = signing.b64(json.dumps(body).encode())
    assert "does not verify" in (_keyed(KEY).check(OTHER, Signature("b", bundle=b)) or "")


def test_message_bundle_over_the_payload_beside_it() -> None:
    data = signing.payload(DIGEST)
    b = signing.message_bundle(KEY, "sha256:" + hashlib.sha256(data).hexdigest())
    assert _keyed(KEY).check(DIGEST, Signature("b", payload=data, bundle=b)) is None
    assert "another artifact" in (_keyed(KEY).check(DIGEST, Signature("b", bundle=b)) or "")


def test_unknown_media_type_and_garbage() -> None:
    b = signing.message_bundle(KEY, DIGEST)
    b["mediaType"] = "application/json"
    assert "not a sigstore bundle" in (_keyed(KEY).check(DIGEST, Signature("b", bundle=b)) or "")
    junk = {"mediaType": signing.MEDIA["0.3"], "verificationMaterial": {"certificate": {"rawBytes": "!!"}}}
    assert "unreadable" in (_keyed(KEY).check(DIGEST, Signature("b", bundle=junk)) or "")


@pytest.mark.parametrize("version", ["0.1", "0.3"])
def test_keyless_certificate_chained_to_the_root(version: str) -> None:
    entries = [signing.tlog_entry(REKOR, SIGNED_AT + dt.timedelta(minutes=1))]
    b = signing.message_bundle(LEAF_KEY, DIGEST, version=version, cert=LEAF, entries=entries)
    sig = Signature("b", bundle=b)
    assert _keyless().check(DIGEST, sig) is None
    rekor = load_public_keys([signing.public_pem(REKOR)])
    assert _keyless(rekor_keys=rekor).check(DIGEST, sig) is None
    assert (
        _keyless(identities=(("https://accounts.example.com", "ci@example.com"),)).check(DIGEST, sig) is None
    )
    why = _keyless(identities=((None, "someone@else.com"),)).check(DIGEST, sig) or ""
    assert "none of the policy's identities" in why
    why = Verifier(keyless=True, roots=(OTHER_ROOT,)).check(DIGEST, sig) or ""
    assert "does not chain" in why
    assert "not keyless" in (_keyed(KEY).check(DIGEST, sig) or "")


def test_keyless_signing_time() -> None:
    # signed after the certificate expired (10 minutes): refused
    late = [signing.tlog_entry(REKOR, SIGNED_AT + dt.timedelta(minutes=30))]
    b = signing.dsse_bundle(LEAF_KEY, DIGEST, cert=LEAF, entries=late)
    assert "not valid at the signing time" in (_keyless().check(DIGEST, Signature("b", bundle=b)) or "")
    # no log entry: the present time, when the short-lived certificate has expired
    b = signing.dsse_bundle(LEAF_KEY, DIGEST, cert=LEAF)
    assert "not valid at the signing time" in (_keyless().check(DIGEST, Signature("b", bundle=b)) or "")
    # a timestamp signed by another log key: refused when the rekor keys are given
    forged = [signing.tlog_entry(WRONG, SIGNED_AT + dt.timedelta(minutes=1))]
    b = signing.dsse_bundle(LEAF_KEY, DIGEST, cert=LEAF, entries=forged)
    rekor = load_public_keys([signing.public_pem(REKOR)])
    assert "rekor keys" in (_keyless(rekor_keys=rekor).check(DIGEST, Signature("b", bundle=b)) or "")


def test_public_key_types() -> None:
    pem = WRONG.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert len(load_public_keys([pem])) == 1
    with pytest.raises(ValueError):
        load_public_keys([b"not a key"])
