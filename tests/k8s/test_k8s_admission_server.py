"""The webhook as kube-apiserver meets it: a real `stockade k8s admission serve` process, its
caBundle taken from `stockade k8s admission config`, AdmissionReview v1 requests over TLS (the
Service's DNS name verified), allowed and denied as the policies say, dry-run honoured, the
failure policy applied when the signature store cannot be read, malformed requests refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import signing
from admission_reviews import SERVICE_NAME, ApiServerClient, cronjob, deployment, exec_connect, pod, review
from helpers import free_port, wait_until

STOCKADE = str(Path(sys.executable).parent / "stockade")
GOOD = "sha256:" + "11" * 32  # signed, clean
VULN = "sha256:" + "22" * 32  # signed, a fixed CRITICAL
TAMPERED = "sha256:" + "33" * 32
WRONG_KEY = "sha256:" + "44" * 32
UNSIGNED = "sha256:" + "55" * 32  # scanned clean, no signature
BUNDLED = "sha256:" + "66" * 32  # a keyless sigstore bundle (v0.3, DSSE), logged
FORGED = "sha256:" + "77" * 32  # a keyless bundle whose log timestamp another key signed
REG = "registry.example.com/team"

POLICIES = f"""\
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {{name: baseline}}
spec:
  match:
    objectSelector:
      matchExpressions: [{{key: stockade.dev/skip, operator: DoesNotExist}}]
    excludedNamespaces: [kube-system]
  checks: {{standard: pss-baseline, action: deny}}
  images:
    allowedRegistries: [{REG}, registry.example.com/keyless, docker.io/library]
---
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {{name: supply}}
spec:
  match: {{namespaces: [prod]}}
  vulnerabilities:
    maxSeverity: HIGH
    maxCounts: {{MEDIUM: 2}}
    ignoreUnfixed: true
    denyKev: true
    unknownImages: deny
  signatures:
    - images: [{REG}]
      keys: [cosign.pub]
    - images: [registry.example.com/keyless]
      keyless:
        roots: [fulcio-root.pem]
        identities: [{{issuer: https://accounts.example.com, subject: ci@example.com}}]
        rekorKeys: [rekor.pub]
---
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {{name: staging}}
spec:
  match: {{namespaces: [staging]}}
  checks: {{ids: [privileged-container], action: warn}}
  vulnerabilities: {{unknownImages: warn}}
"""

BROKEN = f"""\
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {{name: closed}}
spec:
  failurePolicy: Fail
  signatures: [{{images: [{REG}], keys: [cosign.pub]}}]
---
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {{name: open}}
spec:
  failurePolicy: Ignore
  signatures: [{{images: [{REG}], keys: [cosign.pub]}}]
"""


def _finding(severity: str, fixed: bool = True, kev: bool = False) -> str:
    f = {"package": "openssl", "version": "3.0.0", "id": f"CVE-{severity}", "severity": severity,
         "fixed": ["3.0.9"] if fixed else None, "kev": kev}  # fmt: skip
    return json.dumps(f) + "\n"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    ca: bytes
    audit: Path
    config: dict[str, Any]

    def client(self) -> ApiServerClient:
        return ApiServerClient(self.port, self.ca)

    def audit_uids(self) -> list[str]:
        text = self.audit.read_text() if self.audit.exists() else ""
        return [json.loads(line)["uid"] for line in text.splitlines()]


def _start(tmp: Path, policy_text: str, *extra: str, audit: Path | None = None) -> Iterator[Server]:
    policy = tmp / "policies.yaml"
    policy.write_text(policy_text)
    tls = tmp / "tls"
    out = subprocess.run(
        [STOCKADE, "k8s", "admission", "config", "-p", str(policy), "--service", "stockade/stockade-admission",
         "--tls-dir", str(tls), "--output", "json"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    config = json.loads(out.stdout)
    ca = base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"])
    port = free_port()
    audit = audit or tmp / "audit.jsonl"
    proc = subprocess.Popen(
        [STOCKADE, "k8s", "admission", "serve", "-p", str(policy), "--listen", f"127.0.0.1:{port}",
         "--tls-dir", str(tls), "--audit-log", str(audit), *extra],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    server = Server(proc, port, ca, audit, config)

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        c = server.client()
        try:
            return c.get("/healthz") == (200, b"ok")
        except OSError:
            return False
        finally:
            c.close()

    assert wait_until(up, timeout=30)
    yield server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("admission")
    key, other = signing.key(), signing.key()
    (tmp / "cosign.pub").write_bytes(signing.public_pem(key))
    sigs = tmp / "signatures"
    sigs.mkdir()
    for d in (GOOD, VULN, TAMPERED):
        signing.write_cosign(sigs, d, key)
    tampered = sigs / (TAMPERED.replace(":", "-") + ".payload")
    tampered.write_bytes(tampered.read_bytes().replace(b'"tests"', b'"evil!"'))
    signing.write_cosign(sigs, WRONG_KEY, other)
    root, leaf, leaf_key, signed_at = signing.fulcio()
    rekor = signing.key()
    (tmp / "fulcio-root.pem").write_bytes(signing.cert_pem(root))
    (tmp / "rekor.pub").write_bytes(signing.public_pem(rekor))
    logged = [signing.tlog_entry(rekor, signed_at + dt.timedelta(minutes=2))]
    signing.write_bundle(
        sigs, BUNDLED, signing.dsse_bundle(leaf_key, BUNDLED, version="0.3", cert=leaf, entries=logged)
    )
    forged = [signing.tlog_entry(other, signed_at + dt.timedelta(minutes=2))]
    signing.write_bundle(sigs, FORGED, signing.message_bundle(leaf_key, FORGED, cert=leaf, entries=forged))
    results = tmp / "results"
    results.mkdir()
    for d, text in (
        (GOOD, _finding("LOW") + _finding("CRITICAL", fixed=False)),  # the CRITICAL has no fix: ignored
        (VULN, _finding("CRITICAL")),
        (TAMPERED, ""),
        (WRONG_KEY, ""),
        (UNSIGNED, ""),
        (BUNDLED, ""),
        (FORGED, ""),
    ):
        (results / f"{d.replace(':', '-')}.json").write_text(text)
    (results / "registry.example.com%2Fteam%2Fkev:1.json").write_text(_finding("MEDIUM", kev=True))
    (results / "nginx:1.25.json").write_text(_finding("MEDIUM") * 3)
    yield from _start(tmp, POLICIES, "--scan-results", str(results), "--signatures", str(sigs))


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("admission-broken")
    (tmp / "cosign.pub").write_bytes(signing.public_pem(signing.key()))
    not_a_dir = tmp / "signatures"
    not_a_dir.write_text("a file, not the signature directory")
    # and an audit log that cannot be written (ENOSPC): answers go on
    yield from _start(tmp, BROKEN, "--signatures", str(not_a_dir), audit=Path("/dev/full"))


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[ApiServerClient]:
    c = server.client()
    yield c
    c.close()


def _image(digest: str, repo: str = f"{REG}/web") -> str:
    return f"{repo}@{digest}"


def _denied(resp: dict[str, Any], *needles: str) -> str:
    assert resp["allowed"] is False, resp
    status = resp["status"]
    assert status["code"] == 403 and status["reason"] == "Forbidden"
    for n in needles:
        assert n in status["message"], (n, status["message"])
    return str(status["message"])


def test_a_clean_signed_pod_is_allowed_and_audited(server: Server, client: ApiServerClient) -> None:
    doc = review(pod(image=_image(GOOD)))
    resp = client.review(doc)
    assert resp["allowed"] is True and "status" not in resp and "warnings" not in resp
    assert resp["auditAnnotations"]["decision"] == "allow"
    assert resp["auditAnnotations"]["policies"] == "baseline,supply"
    assert wait_until(lambda: doc["request"]["uid"] in server.audit_uids(), timeout=5)
    line = json.loads(server.audit.read_text().splitlines()[-1])
    assert line["allowed"] is True and line["kind"] == "Pod" and line["user"] == "admin"


def test_checks_deny(client: ApiServerClient) -> None:
    resp = client.review(review(pod(image=_image(GOOD), privileged=True)))
    _denied(resp, "baseline/check:privileged-container", "spec.containers[0].securityContext.privileged")
    assert resp["auditAnnotations"]["baseline.check.privileged-container"].startswith("deny: ")


def test_registry_allow_list(client: ApiServerClient) -> None:
    _denied(
        client.review(review(pod(image="registry.example.com/teams/x@" + GOOD))),
        "baseline/images",
        "no allowed",
    )
    _denied(client.review(review(pod(image="evil.io/team/web:1", namespace="dev"))), "baseline/images")
    assert client.review(review(pod(image="nginx:1.25", namespace="dev")))["allowed"] is True


def test_deployment_update_evaluates_the_new_object(client: ApiServerClient) -> None:
    bad = deployment(pod(image=_image(GOOD), privileged=True)["spec"])
    good = deployment(pod(image=_image(GOOD))["spec"])
    _denied(client.review(review(bad, "UPDATE", old=good)), "privileged", "spec.template.spec.containers[0]")
    assert client.review(review(good, "UPDATE", old=bad))["allowed"] is True


def test_cronjob_pod_template_is_checked(client: ApiServerClient) -> None:
    resp = client.review(review(cronjob(pod(image=_image(GOOD), privileged=True)["spec"])))
    _denied(resp, "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged")


def test_vulnerability_thresholds_from_cached_results(client: ApiServerClient) -> None:
    _denied(client.review(review(pod(image=_image(VULN)))), "supply/vulnerabilities", "1 CRITICAL above HIGH")
    _denied(client.review(review(pod(image=f"{REG}/kev:1"))), "1 known exploited (KEV)")
    _denied(client.review(review(pod(image="nginx:1.25"))), "3 MEDIUM (at most 2)")
    _denied(client.review(review(pod(image="docker.io/library/redis:7"))), "has no cached scan result")


def test_unknown_image_rule_warn(client: ApiServerClient) -> None:
    resp = client.review(review(pod(image="docker.io/library/redis:7", namespace="staging")))
    assert resp["allowed"] is True
    assert any("no cached scan result" in w for w in resp["warnings"])


def test_signatures(client: ApiServerClient) -> None:
    _denied(client.review(review(pod(image=_image(TAMPERED)))), "supply/signatures", "does not verify")
    _denied(client.review(review(pod(image=_image(WRONG_KEY)))), "does not verify with the policy's keys")
    _denied(client.review(review(pod(image=_image(UNSIGNED)))), "no signature")
    _denied(client.review(review(pod(image=f"{REG}/web:1.0"))), "has no digest to verify")


def test_keyless_bundle_signatures(client: ApiServerClient) -> None:
    keyless = "registry.example.com/keyless/app"
    assert client.review(review(pod(image=_image(BUNDLED, keyless))))["allowed"] is True
    _denied(client.review(review(pod(image=_image(FORGED, keyless)))), "no transparency-log entry verifies")
    # the key-based rule does not take the keyless bundle
    _denied(client.review(review(pod(image=_image(BUNDLED)))), "signed by a certificate")


def test_dry_run_same_verdict_no_audit_line(server: Server, client: ApiServerClient) -> None:
    denied = review(pod(image=_image(GOOD), privileged=True), dry_run=True)
    allowed = review(pod(image=_image(GOOD)), dry_run=True)
    _denied(client.review(denied), "privileged-container")
    assert client.review(allowed)["allowed"] is True
    marker = review(pod(image=_image(GOOD)))  # written after the dry-run ones
    client.review(marker)
    assert wait_until(lambda: marker["request"]["uid"] in server.audit_uids(), timeout=5)
    uids = server.audit_uids()
    assert denied["request"]["uid"] not in uids and allowed["request"]["uid"] not in uids


def test_namespaces_and_label_selectors(client: ApiServerClient) -> None:
    # kube-system is excluded by default: not matched, allowed without annotations
    resp = client.review(review(pod(image="evil.io/x:1", namespace="kube-system", privileged=True)))
    assert resp["allowed"] is True and "auditAnnotations" not in resp
    # the objectSelector: a pod labelled stockade.dev/skip is not the baseline policy's
    skipped = pod(image="evil.io/x:1", namespace="dev", privileged=True, labels={"stockade.dev/skip": "yes"})
    assert client.review(review(skipped))["allowed"] is True
    # `namespaces: [staging]`: the staging policy warns there, and only there
    resp = client.review(review(pod(image=_image(GOOD), namespace="staging", privileged=True)))
    assert resp["allowed"] is False  # baseline still denies
    assert any(w.startswith("staging/check:privileged-container") for w in resp["warnings"])
    assert all(len(w) < 120 for w in resp["warnings"])


def test_one_policy_path(client: ApiServerClient) -> None:
    doc = review(pod(image=_image(GOOD), namespace="staging", privileged=True))
    resp = client.review(doc, "/validate/staging?timeout=10s")
    assert resp["allowed"] is True and resp["auditAnnotations"]["policies"] == "staging"
    status, body = client.post(json.dumps(doc).encode(), "/validate/nope?timeout=10s")
    assert status == 404 and "no policy 'nope'" in body["error"]


def test_unmatched_requests_are_allowed(client: ApiServerClient) -> None:
    resp = client.review(exec_connect())  # CONNECT pods/exec: no policy matches it
    assert resp == {"uid": resp["uid"], "allowed": True}
    gone = pod(image="evil.io/x:1", privileged=True)
    assert client.review(review(None, "DELETE", old=gone))["allowed"] is True


def test_malformed_requests(server: Server, client: ApiServerClient) -> None:
    status, body = client.post(b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    old = review(pod())
    old["apiVersion"] = "admission.k8s.io/v1beta1"
    status, body = client.post(json.dumps(old).encode())
    assert status == 400 and "admission.k8s.io/v1" in body["error"]
    no_uid = review(pod())
    del no_uid["request"]["uid"]
    status, body = client.post(json.dumps(no_uid).encode())
    assert status == 400 and body["error"] == "request.uid is required"
    status, body = client.post(json.dumps(review(pod())).encode(), content_type="text/plain")
    assert status == 415
    status, body = client.post(b"{}", path="/mutate")
    assert status == 404
    # an oversize body is refused from its Content-Length, before it is read
    ctx = ssl.create_default_context(cadata=server.ca.decode())
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=SERVICE_NAME) as s,
    ):
        s.sendall(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n{"
        )
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")
    # and the server goes on
    assert client.review(review(pod(image=_image(GOOD))))["allowed"] is True
    assert server.proc.poll() is None


def test_a_silent_client_holds_up_no_other(server: Server) -> None:
    # connections that never start their TLS handshake, or stop in the middle of a body
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    ctx = ssl.create_default_context(cadata=server.ca.decode())
    half = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port)), server_hostname=SERVICE_NAME)
    half.sendall(
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    try:
        c = server.client()
        started = time.monotonic()
        assert c.review(review(pod(image=_image(GOOD))))["allowed"] is True
        assert time.monotonic() - started < 5
        c.close()
    finally:
        half.close()
        for s in idle:
            s.close()


def test_fail_closed_and_fail_open(broken: Server) -> None:
    c = broken.client()
    doc = review(pod(image=_image(GOOD)))
    closed = c.review(doc, "/validate/closed?timeout=10s")
    assert closed["allowed"] is False and closed["status"]["code"] == 500
    assert "evaluation failed (fail-closed)" in closed["status"]["message"]
    assert "signature store cannot be read" in closed["status"]["message"]
    opened = c.review(review(pod(image=_image(GOOD))), "/validate/open?timeout=10s")
    assert opened["allowed"] is True
    assert any("fail-open" in w for w in opened["warnings"])
    assert "signature store cannot be read" in opened["auditAnnotations"]["error"]
    # images the signature rules do not name need no store
    assert c.review(review(pod(image="nginx:1")), "/validate/closed?timeout=10s")["allowed"] is True
    c.close()


def test_the_configuration_registers_every_policy(server: Server) -> None:
    hooks = server.config["webhooks"]
    assert [h["name"] for h in hooks] == [
        "baseline.admission.stockade.dev",
        "supply.admission.stockade.dev",
        "staging.admission.stockade.dev",
    ]
    assert hooks[0]["clientConfig"]["service"] == {
        "namespace": "stockade", "name": "stockade-admission", "path": "/validate/baseline", "port": 443,
    }  # fmt: skip
    assert all(h["sideEffects"] == "None" and h["admissionReviewVersions"] == ["v1"] for h in hooks)
    assert hooks[0]["objectSelector"] == {
        "matchExpressions": [{"key": "stockade.dev/skip", "operator": "DoesNotExist"}]
    }
    names = {e["key"]: e for e in hooks[1]["namespaceSelector"]["matchExpressions"]}
    assert names["kubernetes.io/metadata.name"]["operator"] in ("In", "NotIn")
    rules = {g for r in hooks[0]["rules"] for g in r["apiGroups"]}
    assert rules == {"", "apps", "batch"}


@pytest.mark.slow
def test_short_latency_benchmark() -> None:
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "admission_latency.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--duration", "3", "--json"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    phases = {p["phase"]: p for p in json.loads(out.stdout)["phases"]}
    v = phases["POST /validate?timeout=10s"]
    assert v["errors"] == 0 and v["requests"] >= 550
    # p99 < 10 ms holds on an idle machine; on this shared 2-core one other jobs' load dominates
    # (docs/performance.md), so the bound asserted is loose: no request near kube-apiserver's timeout
    assert v["p99"] < 2000, v
