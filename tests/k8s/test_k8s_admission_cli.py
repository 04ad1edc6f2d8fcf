"""`stockade k8s admission config` and `review` as users run them: the configuration document
(Service or URL, caBundle, failure policy, selectors, rules), offline reviews with their exit
status, and bad input said in one line with file and line, never a traceback."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from admission_reviews import pod, review

STOCKADE = str(Path(sys.executable).parent / "stockade")

POLICY = """\
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {name: web}
spec:
  failurePolicy: Ignore
  match:
    kinds: [Pod, Deployment]
    operations: [CREATE]
    namespaces: [prod, staging]
    namespaceSelector: {matchLabels: {stockade.dev/enforce: "true"}}
  checks: {ids: [privileged-container]}
  signatures: [{images: [registry.example.com/team], keys: [missing.pub]}]
"""


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STOCKADE, *args], capture_output=True, text=True, timeout=60, input=stdin.decode() if stdin else None
    )


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    p = d / "web.yaml"
    p.write_text(POLICY.replace("keys: [missing.pub]", "keys: [cosign.pub]"))
    import signing

    (d / "cosign.pub").write_bytes(signing.public_pem(signing.key()))
    return p


def test_config_for_a_url(policy: Path, tmp_path: Path) -> None:
    r = _run("k8s", "admission", "config", "-p", str(policy), "--url", "https://10.0.0.5:8443/",
             "--tls-dir", str(tmp_path / "tls"), "--timeout", "3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert doc["kind"] == "ValidatingWebhookConfiguration"
    (hook,) = doc["webhooks"]
    assert hook["clientConfig"]["url"] == "https://10.0.0.5:8443/validate/web"
    ca = base64.b64decode(hook["clientConfig"]["caBundle"])
    assert ca == (tmp_path / "tls" / "ca.crt").read_bytes()
    leaf = x509.load_pem_x509_certificate((tmp_path / "tls" / "tls.crt").read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "stockade-admission.stockade.svc" in sans.get_values_for_type(x509.DNSName)
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 3
    assert hook["namespaceSelector"] == {
        "matchLabels": {"stockade.dev/enforce": "true"},
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["prod", "staging"]},
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]},
        ],
    }
    assert hook["rules"] == [
        {"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"},
        {"apiGroups": ["apps"], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["deployments"],
         "scope": "Namespaced"},
    ]  # fmt: skip
    # --fail-closed overrides the policy's Ignore; the same CA is kept on a second run
    r2 = _run("k8s", "admission", "config", "-p", str(policy), "--service", "sec/hook", "--fail-closed",
              "--tls-dir", str(tmp_path / "tls"), "-o", "json")  # fmt: skip
    (hook2,) = json.loads(r2.stdout)["webhooks"]
    assert hook2["failurePolicy"] == "Fail" and hook2["clientConfig"]["service"]["namespace"] == "sec"
    assert base64.b64decode(hook2["clientConfig"]["caBundle"]) == ca


def test_usage_errors_are_one_line(policy: Path, tmp_path: Path) -> None:
    r = _run("k8s", "admission", "config", "-p", str(policy), "--url", "http://x", "--tls-dir", str(tmp_path))
    assert r.returncode == 2 and r.stderr.startswith("stockade: error: --url 'http://x'")
    r = _run("k8s", "admission", "config", "-p", str(policy), "--tls-dir", str(tmp_path))
    assert r.returncode == 2 and "give one of --service" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("ids: [privileged-container]", "ids: [privileged]"))
    r = _run(
        "k8s", "admission", "serve", "-p", str(bad), "--tls-dir", str(tmp_path), "--listen", "127.0.0.1:0"
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"{bad}:11:" in r.stderr and "no check 'privileged'" in r.stderr
    # a key file that is not there: the policy is named
    missing = tmp_path / "missing.yaml"
    missing.write_text(POLICY)
    r = _run("k8s", "admission", "review", "-", "-p", str(missing), stdin=json.dumps(pod()).encode())
    assert "Traceback" not in r.stderr and "policy 'web'" in r.stderr and "missing.pub" in r.stderr


def test_review_offline(policy: Path, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(yaml.safe_dump(pod(image="nginx:1", privileged=True)))
    r = _run("k8s", "admission", "review", str(f), "-p", str(policy))
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)["response"]
    assert out["allowed"] is False and "privileged-container" in out["status"]["message"]
    f.write_text(yaml.safe_dump(pod(image="nginx:1")))
    r = _run("k8s", "admission", "review", str(f), "-p", str(policy))
    assert r.returncode == 0 and json.loads(r.stdout)["response"]["allowed"] is True
    # an AdmissionReview as kube-apiserver sends it, on stdin; another namespace: not matched
    doc = review(pod(privileged=True, namespace="dev"))
    r = _run("k8s", "admission", "review", "-", "-p", str(policy), stdin=json.dumps(doc).encode())
    assert r.returncode == 0 and json.loads(r.stdout)["response"]["uid"] == doc["request"]["uid"]


def test_review_failure_policy_override(policy: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "sigs"
    not_a_dir.write_text("x")
    obj = json.dumps(pod(image="registry.example.com/team/app@sha256:" + "1" * 64)).encode()
    base = ("k8s", "admission", "review", "-", "-p", str(policy), "--signatures", str(not_a_dir))
    r = _run(*base, stdin=obj)  # the policy says Ignore: allowed, with a warning
    assert r.returncode == 0 and "--signatures" in r.stderr
    out = json.loads(r.stdout)["response"]
    assert out["allowed"] is True and "fail-open" in out["warnings"][0]
    r = _run(*base, "--fail-closed", stdin=obj)
    out = json.loads(r.stdout)["response"]
    assert r.returncode == 1 and out["status"]["code"] == 500
