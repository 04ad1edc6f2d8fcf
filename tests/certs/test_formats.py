"""Certificates read from every format a node keeps them in, made in the test run: PEM bundles,
DER, PKCS#12 (no password, Java's changeit, a real password), and Java keystores made by the JDK's
keytool (JKS and JCEKS, with changeit and another password: the certificates are read either way)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from helpers import need
from stockade.certs.formats import read_certificates
from stockade.certs.interface import CertError
from stockade.certs.jks import read_keystore
from stockade.certs.record import Place, describe
from tlsgen import fingerprint, key_pem, keytool_convert, keytool_store, make_cert, pem, pkcs12_bytes


@pytest.fixture(scope="module")
def certs() -> dict[str, Any]:
    """A CA, a leaf it signed (SANs, 10 days), an expired EC self-signed certificate."""
    ca = make_cert("Test Root CA", 3650, ca=True)
    leaf = make_cert("web.test", 10, issuer=ca, sans=("web.test", "www.web.test"))
    old = make_cert("old.test", -5, ec_key=True)
    return {"ca": ca, "leaf": leaf, "old": old}


def _fps(data: bytes, path: str = "x") -> tuple[str, list[str], list[str]]:
    fmt, found, problems = read_certificates(data, path)
    return fmt, [fingerprint(c) for _, c in found], problems


def test_a_pem_bundle_gives_every_certificate_and_names_the_bad_block(certs: dict[str, Any]) -> None:
    (ca, _), (leaf, key), (old, _) = certs["ca"], certs["leaf"], certs["old"]
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    data = pem(leaf) + key_pem(key) + broken + pem(ca) + pem(old)
    fmt, fps, problems = _fps(data, "/srv/bundle.pem")
    assert fmt == "pem"
    assert fps == [fingerprint(leaf), fingerprint(ca), fingerprint(old)]
    assert len(problems) == 1 and problems[0].startswith("/srv/bundle.pem: PEM certificate block 2")


def test_a_pem_of_keys_only_is_an_error_naming_the_file(certs: dict[str, Any]) -> None:
    with pytest.raises(CertError, match=r"^/etc/x/k\.pem: PEM without a certificate"):
        read_certificates(key_pem(certs["leaf"][1]), "/etc/x/k.pem")


def test_der_and_pkcs12_without_a_password_or_with_changeit(certs: dict[str, Any]) -> None:
    leaf, key = certs["leaf"]
    assert _fps(leaf.public_bytes(serialization.Encoding.DER)) == ("der", [fingerprint(leaf)], [])
    for pw in (None, b"changeit"):
        fmt, fps, _ = _fps(pkcs12_bytes(leaf, key, pw))
        assert (fmt, fps) == ("pkcs12", [fingerprint(leaf)])
    with pytest.raises(CertError, match=r"^/app/a\.p12: .*password-protected PKCS#12 is not read"):
        read_certificates(pkcs12_bytes(leaf, key, b"s3cret"), "/app/a.p12")


def test_the_facts_of_a_certificate(certs: dict[str, Any]) -> None:
    (ca, _), (leaf, _), (old, _) = certs["ca"], certs["leaf"], certs["old"]
    now = __import__("time").time()
    r = describe(leaf, Place("file", "/srv/x.pem", "pem"))
    assert r.subject == "CN=web.test" and r.issuer == "CN=Test Root CA"
    assert r.sans == ["DNS:web.test", "DNS:www.web.test"]
    assert (r.key_type, r.key_size, r.ca, r.self_signed) == ("RSA", 2048, False, False)
    assert 9.9 < r.days_left(now) <= 10 and r.serial == format(leaf.serial_number, "x")
    assert r.sha256 == fingerprint(leaf)
    c = describe(ca, Place("file", "/srv/ca.pem", "pem"))
    assert (c.ca, c.self_signed) == (True, True)
    o = describe(old, Place("file", "/srv/old.pem", "pem")).to_dict(now)
    assert (o["key_type"], o["key_size"], o["expired"], o["self_signed"]) == (
        "EC (secp256r1)",
        256,
        True,
        True,
    )
    assert o["days_left"] < -4.9 and o["location"] == "/srv/old.pem"


@pytest.fixture(scope="module")
def keystores(certs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """JKS and JCEKS made by keytool from a PKCS#12 (a key entry: the leaf and its CA), a JKS with
    another password and a PKCS#12 trust store (trusted entries) made by keytool."""
    need(shutil.which("keytool"), "keytool (openjdk-17-jre-headless) is not installed")
    d = tmp_path_factory.mktemp("keystores")
    (ca, _), (leaf, key) = certs["ca"], certs["leaf"]
    p12 = d / "src.p12"
    p12.write_bytes(pkcs12_bytes(leaf, key, b"changeit", chain=(ca,)))
    made = {  # four JVMs at once: each takes seconds to start
        "jks": partial(keytool_convert, p12, d / "a.jks", "JKS"),
        "jceks": partial(keytool_convert, p12, d / "c.jceks", "JCEKS"),
        "jks-other": partial(keytool_store, d / "b.jks", "JKS", {"old": certs["old"][0]}, "another-pass"),
        "p12": partial(keytool_store, d / "d.p12", "PKCS12", {"root": ca}, "changeit"),
    }
    with ThreadPoolExecutor(4) as pool:
        futures = {k: pool.submit(f) for k, f in made.items()}
        return {k: f.result() for k, f in futures.items()}


def test_java_keystores_made_by_keytool(certs: dict[str, Any], keystores: dict[str, Path]) -> None:
    (ca, _), (leaf, _) = certs["ca"], certs["leaf"]
    for name, kind in (("jks", "jks"), ("jceks", "jceks")):
        fmt, found, problems = read_certificates(keystores[name].read_bytes(), name)
        assert fmt == kind and problems == [], (name, problems)
        # the key entry's chain, leaf first, under its alias
        assert [(a, fingerprint(c)) for a, c in found] == [
            ("web", fingerprint(leaf)),
            ("web[1]", fingerprint(ca)),
        ]
    assert _fps(keystores["p12"].read_bytes())[:2] == ("pkcs12", [fingerprint(ca)])
    assert read_keystore(keystores["jks"].read_bytes()).integrity == "changeit"
    # another password: the certificates are still read; the digest is not verified
    other = read_keystore(keystores["jks-other"].read_bytes())
    assert other.integrity == "unverified"
    assert _fps(keystores["jks-other"].read_bytes())[1] == [fingerprint(certs["old"][0])]


def test_a_damaged_keystore_is_an_error_naming_the_file(keystores: dict[str, Path]) -> None:
    data = keystores["jks"].read_bytes()
    with pytest.raises(CertError, match=r"^/opt/k\.jks: damaged Java keystore: truncated"):
        read_certificates(data[:60], "/opt/k.jks")
